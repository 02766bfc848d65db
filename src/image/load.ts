// The image loader: copies the composefs image into a memfd while computing its fs-verity digest, seals the memfd,
// and hands it over only when the digest is the trusted one. After F_SEAL_WRITE|SHRINK|GROW|SEAL nothing can change
// the bytes that were checked (memfd_create(2) "File sealing"), whatever happens to the file on disk afterwards.
//
// The source is opened by path, following symlinks (composefs-rs doc/repository.md: images/<digest> is a symlink to
// ../objects/XX/...; such objects have fs-verity enabled, which makes the kernel path below the usual one there):
// where the file lives does not matter, only its bytes, and those are checked. It is opened O_NONBLOCK so that a
// FIFO swapped in after the stat cannot block the boot, and it must be a regular file both before and after open.
//
// The bytes hashed are the memfd's own: the copy runs in the kernel (pread into the memfd's mapping, or sendfile)
// and the hashing reads the memfd's pages, range by range behind the copy (./copy-into-memfd.ts); a compressed
// image is hashed from the very buffer written. Until the seal, only a process able to open /proc/<pid>/fd/N of sealroot
// could write to the memfd, and that takes ptrace access to sealroot (which could as well rewrite its memory):
// the seal closes nothing an attacker without that access could use.
//
// Two phases: copyImage() returns as soon as the memfd is sealed, while the workers may still be hashing it (the
// boot validates the EROFS meanwhile); verify() then finishes the hashing and compares the digest. loadImage()
// is both in one.
import * as fs from 'node:fs';
import type { Logger } from '../log.ts';
import { StepError, SysError } from '../errors.ts';
import { AT_FDCWD, O_RDONLY, openAt } from '../sys/files.ts';
import { msSinceStart } from '../sys/clock.ts';
import { closeFd, preadFully, readFully, writeFully } from '../sys/io.ts';
import { mapReadOnly, mapSharedWritable, preadToAddress, unmap } from '../sys/mmap.ts';
import { addSeals, describeSeals, getSeals, IMAGE_SEALS, memfdCreate } from '../sys/memfd.ts';
import { measureVerity, type MeasuredVerity } from '../sys/verity.ts';
import { fileKind } from '../sys/confined-root.ts';
import { digestsEqual, formatDigest, type Digest } from '../verity/digest.ts';
import { DEFAULT_BLOCK_SIZE, FsVerityHasher } from '../verity/merkle.ts';
import { ChunkError, HashPool, PARALLEL_THRESHOLD, defaultWorkerCount } from '../verity/pool.ts';
import { offloadLimit, offloadsNatively, type RangeHashing } from '../verity/ranges.ts';
import { copiesNatively, copyIntoMemfd, prepareMemfd } from './copy-into-memfd.ts';
import { closeImageMemfd, createImageMemfd, memoryLeft, type ImageMemfd, type ImageMemoryOptions } from './memory.ts';
import { chooseMethod } from './method.ts';

export interface LoadedImage {
  /** The sealed memfd (F_SEAL_SHRINK|GROW|WRITE|SEAL); the caller closes it. */
  fd: number;
  size: number;
  /** The memfd's bytes: a read-only mapping of it, made when first read (unmapped when this array is collected). */
  readonly bytes: Uint8Array;
  digest: Digest;
  /** The seals read back from the memfd (F_GET_SEALS). */
  seals: number;
  method: 'userspace' | 'kernel-fsverity';
  compressed: boolean;
  /** hugetlb: never swapped (./memory.ts); shmem: swappable once the system enables swap. */
  backing: ImageMemfd['backing'];
  millis: number;
}

/** The image in its sealed memfd, its digest maybe still being computed; verify() or abandon() it. */
export interface ImageCopy {
  fd: number;
  size: number;
  /** The memfd's bytes: a read-only mapping of it, made when first read (unmapped when this array is collected). */
  readonly bytes: Uint8Array;
  seals: number;
  method: 'userspace' | 'kernel-fsverity';
  compressed: boolean;
  backing: ImageMemfd['backing'];
  /**
   * Finishes the hashing (this thread takes the ranges the workers have not) and compares the digest with the
   * trusted one. On a refusal the memfd is closed and StepError('verify-image') thrown.
   */
  verify(): Promise<LoadedImage>;
  /** Stops the hashing and closes the memfd: for a caller that gives up before verify(). */
  abandon(): Promise<void>;
}

export interface LoadImageOptions {
  path: string;
  /**
   * The trusted digest, or the trusted set (one algorithm; e.g. the TPM's set when the layout does not name the
   * image's digest): the image must have one of them.
   */
  expected: Digest | readonly Digest[];
  /** Refuse images (the decompressed size for zstd) larger than this many bytes. Default DEFAULT_MAX_IMAGE_SIZE. */
  maxSize?: number;
  /**
   * The trusted image's size, when the trust record carries it: any other size (decompressed, for zstd) is
   * refused, and the copy (the decompression) never goes beyond it.
   */
  expectedSize?: number;
  /** Unswappable memory for the image and the memory bound (./memory.ts); unswappable defaults to "require". */
  memory?: ImageMemoryOptions;
  log?: Logger;
  /** Checked between the ranges copied: an aborted copy stops with the signal's reason. */
  signal?: AbortSignal;
  /** Hashing workers already started (e.g. while the TPM was busy); the caller closes them. Otherwise started here. */
  pool?: HashPool;
  /** Knobs for tests and benchmarks. */
  tuning?: {
    /** Bytes per range copied and hashed. */
    chunkSize?: number;
    /** Worker threads to start; 0 hashes on this thread. Default: one per other CPU for images >= PARALLEL_THRESHOLD. */
    workers?: number;
    /** Called after each chunk is copied, in order (tests change the file here, deterministically). */
    onChunk?: (done: number) => void;
    /** Stands in for FS_IOC_MEASURE_VERITY (the host running the tests has no fs-verity). */
    measure?: (fd: number) => MeasuredVerity | undefined;
  };
}

/** A composefs image is typically tens of MiB; the memfd lives in RAM. */
export const DEFAULT_MAX_IMAGE_SIZE = 2 ** 31;
export { PARALLEL_THRESHOLD };
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const ZSTD_READ_SIZE = 1 << 20;
const STEP = 'verify-image';
/** Refusals before or during the copy for size and memory: the copy never starts, or stops at the bound. */
const COPY_STEP = 'copy-image';

/** The candidates as a list: at least one, all of one algorithm (the hashing computes one). */
function trustedDigests(expected: Digest | readonly Digest[]): readonly Digest[] {
  const list: readonly Digest[] = Array.isArray(expected) ? expected : [expected as Digest];
  if (list.length === 0) throw new StepError(STEP, 'no trusted digest to compare the image with');
  if (list.some((digest) => digest.algorithm !== list[0]!.algorithm)) throw new StepError(STEP, 'the trusted digests mix hash algorithms');
  return list;
}

/** Throws StepError('verify-image', ...) on any mismatch or refusal; never returns an unsealed or unverified fd. */
export async function loadImage(options: LoadImageOptions): Promise<LoadedImage> {
  return (await copyImage(options)).verify();
}

/** The copy phase: throws StepError('verify-image', ...) on any refusal; the memfd is then closed. */
export async function copyImage(options: LoadImageOptions): Promise<ImageCopy> {
  try {
    return await copy(options);
  } catch (error) {
    throw asLoadError(error, options.path);
  }
}

function asLoadError(error: unknown, path: string): StepError {
  if (error instanceof StepError) return error;
  return new StepError(STEP, 'cannot load the image', { path, cause: error });
}

async function copy(options: LoadImageOptions): Promise<ImageCopy> {
  const started = msSinceStart();
  const { path, log } = options;
  const trusted = trustedDigests(options.expected);
  const maxSize = options.maxSize ?? DEFAULT_MAX_IMAGE_SIZE;
  const refuse = (reason: string, cause?: unknown) => new StepError(STEP, reason, { path, cause });

  let stat: fs.Stats;
  try {
    stat = fs.statSync(path);
  } catch (error) {
    throw refuse('cannot stat the image', error);
  }
  if (!stat.isFile()) throw refuse(`the image is ${fileKind(stat)}, not a regular file`);
  let source: number;
  try {
    source = openAt(AT_FDCWD, path, O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (error) {
    throw refuse('cannot open the image', error);
  }
  try {
    const before = fs.fstatSync(source);
    if (!before.isFile()) throw refuse(`the image is ${fileKind(before)}, not a regular file`);
    const size = before.size;
    const bound = (reason: string) => new StepError(COPY_STEP, reason, { path });
    if (size > maxSize) throw bound(`the image is ${size} bytes, over the limit of ${maxSize}`);
    const magic = Buffer.alloc(4);
    const compressed = path.endsWith('.zst') || (preadFully(source, magic, 0, path) === 4 && magic.equals(ZSTD_MAGIC));
    const { expectedSize } = options;
    if (expectedSize !== undefined && !compressed && size !== expectedSize) {
      throw bound(`the image is ${size} bytes, the trusted image is ${expectedSize}`);
    }
    const measured = compressed ? undefined : (options.tuning?.measure ?? ((fd: number) => measureVerity(fd, path)))(source);
    const choice = chooseMethod(measured, trusted, compressed);
    log?.notice(`${STEP}: ${path}: ${choice.method === 'kernel-fsverity' ? 'kernel fs-verity' : 'userspace fs-verity'} (${choice.reason})`);

    const memoryOptions: ImageMemoryOptions = { ...options.memory, log: options.memory?.log ?? log };
    // zstd: the decompressed size is known only at the end; the stream goes to a plain memfd first, bounded.
    let image: ImageMemfd | undefined = compressed ? undefined : createImageMemfd(size, path, memoryOptions);
    let memfd = image?.fd ?? -1;
    let copied: Copied | undefined;
    const stopHashing = async (): Promise<void> => {
      await copied?.hashing?.abandon();
      await copied?.ownPool?.close();
    };
    try {
      if (compressed) {
        const staged = await stageDecompressed(source, size, options, maxSize, memoryOptions, refuse, bound);
        try {
          image = createImageMemfd(staged.size, path, memoryOptions, staged.memfd);
        } catch (error) {
          closeFd(staged.memfd);
          throw error;
        }
        if (image.fd === staged.memfd) {
          copied = staged;
        } else {
          // Hashed again from the memfd that stays: the digest is of the very bytes mounted.
          try {
            copied = await copyPlain(staged.memfd, staged.size, image, options, true, refuse);
          } finally {
            closeFd(staged.memfd);
          }
        }
        memfd = image.fd;
      } else {
        copied = await copyPlain(source, size, image!, options, choice.method === 'userspace', refuse);
      }
      const memfdSize = fs.fstatSync(memfd).size;
      const capacity = image!.capacity(copied.size);
      if (memfdSize !== capacity) throw refuse(`the memfd holds ${memfdSize} bytes, ${copied.size} were copied (${capacity} expected)`);
      addSeals(memfd, IMAGE_SEALS);
      const seals = getSeals(memfd);
      if ((seals & IMAGE_SEALS) !== IMAGE_SEALS) throw refuse(`the memfd's seals read back as ${describeSeals(seals)}`);
      const { size: copiedSize, hashing, ownPool } = copied;
      // Mapped for JavaScript when first asked for (the validation at boot, inspect), not before: see copyPlain.
      let view = copied.bytes?.subarray(0, copiedSize);
      const bytesOf = (): Uint8Array => (view ??= mapReadOnly(memfd, capacity, MEMFD_LABEL).subarray(0, copiedSize));
      const method = choice.method;
      const backing = image!.backing;
      const imageMemfd = image!;
      imageMemfd.releaseUnused(memfdSize);

      const verify = async (): Promise<LoadedImage> => {
        try {
          // The kernel path: the kernel verified the bytes as they were read, against its measured digest.
          let digestBytes = method === 'kernel-fsverity' ? measured?.digest : copied!.digest;
          let shares = '';
          if (hashing !== undefined) {
            try {
              const hashed = await hashing.finish();
              digestBytes = hashed.digest;
              shares = ` (ranges hashed: ${hashed.hashedHere} here, ${hashed.hashedByWorkers} by other threads)`;
            } catch (error) {
              throw refuse('cannot hash the image', error);
            }
          }
          if (digestBytes === undefined) throw refuse('no digest was computed');
          const digest: Digest = { algorithm: trusted[0]!.algorithm, bytes: digestBytes };
          // Every candidate is compared (constant time each): the answer does not depend on where a match sits.
          const matches = trusted.map((candidate) => digestsEqual(digest, candidate));
          if (!matches.includes(true)) {
            const wanted = trusted.length === 1 ? `the trusted digest is ${formatDigest(trusted[0]!)}` : `the trusted digests are ${trusted.map(formatDigest).join(', ')}`;
            throw refuse(`digest mismatch: the image is ${formatDigest(digest)}, ${wanted}`);
          }
          const millis = msSinceStart() - started;
          log?.info(`${STEP}: ${path}: ${copiedSize} bytes, ${formatDigest(digest)} matches; ${backing} memfd sealed (${describeSeals(seals)}) in ${millis.toFixed(0)} ms${shares}`);
          return {
            fd: memfd, size: copiedSize, get bytes() {
              return bytesOf();
            }, digest, seals, method, compressed, backing, millis,
          };
        } catch (error) {
          await stopHashing();
          closeImageMemfd(imageMemfd);
          throw asLoadError(error, path);
        } finally {
          await ownPool?.close();
        }
      };
      const abandon = async (): Promise<void> => {
        await stopHashing();
        closeImageMemfd(imageMemfd);
      };
      return {
        fd: memfd, size: copiedSize, get bytes() {
          return bytesOf();
        }, seals, method, compressed, backing, verify, abandon,
      };
    } catch (error) {
      await stopHashing();
      if (image !== undefined) closeImageMemfd(image);
      throw error;
    }
  } finally {
    closeFd(source);
  }
}

type Refuse = (reason: string, cause?: unknown) => StepError;

const MEMFD_LABEL = 'memfd:sealroot-image';

interface Copied {
  size: number;
  /** The memfd mapped, when the copy mapped it. */
  bytes?: Uint8Array;
  /** The digest, when the copy computed it all. */
  digest?: Buffer;
  /** The hashing still under way (the plain userspace path). */
  hashing?: RangeHashing;
  /** Workers the loader started itself (none given): closed once the hashing is over. */
  ownPool?: HashPool;
}

async function copyPlain(
  source: number, size: number, image: ImageMemfd, options: LoadImageOptions, hash: boolean, refuse: Refuse,
): Promise<Copied> {
  // With the shim, libuv's threads copy and hash (or hash what this thread copies), whatever the size (nothing to
  // boot); otherwise worker threads hash, for an image large enough to pay for their start.
  const native = options.pool === undefined && offloadsNatively();
  const workers = options.tuning?.workers ?? (hash && (native || size >= PARALLEL_THRESHOLD) ? defaultWorkerCount() : 0);
  const ownPool = options.pool === undefined && !native && hash && workers > 0 ? new HashPool(workers) : undefined;
  const memfd = image.fd;
  const capacity = image.capacity(size);
  let copied;
  let bytes: Uint8Array | undefined;
  // hugetlbfs has no write(2) nor splice: the kernel copies into a shared mapping instead (pread), which must be
  // gone before F_SEAL_WRITE (EBUSY otherwise): it is unmapped below, after every thread copying into it is done.
  // The read-only mapping, when this thread's copy needs one, is read only behind the copy, where the pages exist
  // (src/sys/mmap.ts).
  let writable: number | undefined;
  try {
    prepareMemfd(memfd, capacity, MEMFD_LABEL);
    if (image.backing === 'hugetlb') writable = mapSharedWritable(memfd, capacity, MEMFD_LABEL);
    const address = writable;
    const copyOptions = {
      source,
      size,
      memfd,
      copyRange: address === undefined ? undefined : (offset: number, length: number) => preadToAddress(source, address + offset, length, offset, options.path),
      destination: address,
      path: options.path,
      merkle: hash ? { algorithm: trustedDigests(options.expected)[0]!.algorithm, blockSize: DEFAULT_BLOCK_SIZE } : undefined,
      pool: hash ? options.pool ?? ownPool : undefined,
      // One range at once per CPU (libuv's threads copying too, or this thread copying while they hash), two of
      // libuv's threads left to the TPM device (offloadLimit).
      offload: hash && native && workers > 0 ? offloadLimit(workers + 1) : undefined,
      rangeSize: options.tuning?.chunkSize,
      onChunk: options.tuning?.onChunk,
      signal: options.signal,
    };
    // Mapped for JavaScript only when this thread's hashing needs it: a view of the whole image counts as external
    // memory for V8, and one of 64 MiB (its soft limit) set off a full GC in every boot (~3 ms, measured).
    bytes = copiesNatively(copyOptions) ? undefined : mapReadOnly(memfd, capacity, MEMFD_LABEL);
    copied = await copyIntoMemfd({ ...copyOptions, mapped: bytes });
  } catch (error) {
    await ownPool?.close();
    if (error instanceof StepError) throw error;
    const code = error instanceof SysError || error instanceof ChunkError ? error.code : undefined;
    if (code === 'EIO' && !hash) throw refuse('the kernel refused a block of the image (fs-verity: EIO)', error);
    throw refuse('cannot copy the image', error);
  } finally {
    if (writable !== undefined) unmap(writable, capacity, MEMFD_LABEL);
  }
  // Until verify(), this thread hashes too whenever it has nothing else to run (e.g. while the TPM answers).
  void copied.hashing?.hashAhead();
  const result: Copied = { size, bytes, hashing: copied.hashing, ownPool };
  try {
    if (copied.bytes < size) throw refuse(`the image shrank during the copy (${copied.bytes} of ${size} bytes read)`);
    // Read past the expected end: a file that grew while it was copied is refused, not truncated silently.
    if (preadFully(source, Buffer.alloc(1), size, options.path) !== 0) throw refuse(`the image grew during the copy (beyond ${size} bytes)`);
    const after = fs.fstatSync(source).size;
    if (after !== size) throw refuse(`the image changed size during the copy (${size} -> ${after} bytes)`);
  } catch (error) {
    await copied.hashing?.abandon();
    await ownPool?.close();
    throw error;
  }
  return result;
}

/**
 * zstd: the decompressed bytes are written to a plain memfd and hashed; the trusted digest is that of the
 * decompressed image. Decompression runs on libuv's thread pool, overlapping with the hashing here. The output is
 * bounded before it is written: by maxSize, the trusted size when known, and the memory the machine has left.
 * The caller keeps this memfd as the image's, or copies it into unswappable memory and closes it.
 */
async function stageDecompressed(
  source: number, size: number, options: LoadImageOptions, maxSize: number, memory: ImageMemoryOptions,
  refuse: Refuse, bound: Refuse,
): Promise<Copied & { memfd: number }> {
  const hasher = new FsVerityHasher({ algorithm: trustedDigests(options.expected)[0]!.algorithm, blockSize: DEFAULT_BLOCK_SIZE });
  const left = memoryLeft(memory);
  const limits: [number, string][] = [[maxSize, `over the limit of ${maxSize} bytes`], [left.bytes, `over the memory left for it (${left.where})`]];
  if (options.expectedSize !== undefined) limits.push([options.expectedSize, `larger than the trusted image (${options.expectedSize} bytes)`]);
  const [limit, over] = limits.reduce((a, b) => (b[0] < a[0] ? b : a));
  let compressedBytes = 0;
  function* compressedChunks(): Generator<Buffer> {
    for (;;) {
      const buffer = Buffer.allocUnsafe(ZSTD_READ_SIZE);
      const n = readFully(source, buffer, options.path);
      if (n === 0) return;
      compressedBytes += n;
      yield buffer.subarray(0, n);
    }
  }
  const memfd = memfdCreate('sealroot-image');
  let overLimit = false;
  // Loaded for a compressed image only: the usual boot never pays for these modules' start.
  const zlib = process.getBuiltinModule('node:zlib');
  const { pipeline } = process.getBuiltinModule('node:stream/promises');
  try {
    try {
      await pipeline(compressedChunks, zlib.createZstdDecompress(), async (chunks: AsyncIterable<Buffer>) => {
        for await (const chunk of chunks) {
          if (hasher.size + chunk.length > limit) {
            overLimit = true;
            throw bound(`the decompressed image is ${over}`);
          }
          writeFully(memfd, chunk, MEMFD_LABEL);
          hasher.update(chunk);
          options.tuning?.onChunk?.(hasher.size);
        }
      });
    } catch (error) {
      if (overLimit || error instanceof StepError) throw error;
      if (error instanceof SysError) throw refuse('cannot copy the image', error);
      throw refuse('corrupt zstd stream', error);
    }
    const after = fs.fstatSync(source).size;
    if (compressedBytes !== size || after !== size) {
      throw refuse(`the compressed image changed size during the copy (${size} -> ${after} bytes, ${compressedBytes} read)`);
    }
    const decompressed = hasher.size;
    if (options.expectedSize !== undefined && decompressed !== options.expectedSize) {
      throw bound(`the decompressed image is ${decompressed} bytes, the trusted image is ${options.expectedSize}`);
    }
    return { size: decompressed, digest: hasher.digest(), memfd };
  } catch (error) {
    closeFd(memfd);
    throw error;
  }
}
