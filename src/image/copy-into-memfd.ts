// Copies the image into its memfd in the kernel and hashes what the memfd holds, with no copy in userspace:
// - with the shim and a writable mapping (a hugetlb memfd, the default): libuv's threads, one per CPU, each claim
//   the next range, pread it from the source into the memfd's shared mapping and hash it there, from the memfd's
//   own pages, while it is still in their cache; this thread is free for the rest of the boot (the TPM read);
// - otherwise: this thread copies each range (sendfile, or pread into the mapping) and publishes it to the hash
//   workers or libuv's threads (src/verity/ranges.ts), which hash it through read-only mappings of the memfd
//   while the next one is copied.
// The memfd's size is set and sealed (SHRINK|GROW) first, so no mapping can fault past the end of the file.
import { ftruncate, sendfileFully } from '../sys/io.ts';
import { addSeals, F_SEAL_GROW, F_SEAL_SHRINK } from '../sys/memfd.ts';
import type { MerkleOptions } from '../verity/merkle.ts';
import type { HashPool } from '../verity/pool.ts';
import { copiesRangesNatively, DEFAULT_RANGE_SIZE, RangeHashing } from '../verity/ranges.ts';

export interface CopyIntoMemfdOptions {
  source: number;
  /** Bytes to copy: the source's size from fstat. Copying stops early if the source ends sooner. */
  size: number;
  /** The memfd, sized and sealed by prepareMemfd. */
  memfd: number;
  /**
   * The memfd mapped (mapReadOnly), after prepareMemfd: at least `size` bytes (a hugetlb memfd: whole pages).
   * Not needed when copiesNatively(these options): the ranges are hashed where they are copied to.
   */
  mapped?: Uint8Array;
  /** Names the source in errors. */
  path: string;
  /** The fs-verity parameters; absent: copy only (the kernel verifies an fs-verity source as it is read). */
  merkle: MerkleOptions | undefined;
  /** Worker threads to hash on besides this thread. */
  pool?: HashPool;
  /** Without a pool: ranges hashed at once on libuv's threads through the shim (RangeHashingOptions.offload). */
  offload?: number;
  rangeSize?: number;
  /** Called after each range is copied (tests change the source at a known point). */
  onChunk?: (done: number) => void;
  /**
   * Copies `length` bytes of the source at `offset` to the same offset of the memfd; returns the bytes copied
   * (fewer at the source's end). Default: sendfile. A hugetlb memfd has no write(2): the caller preads into a
   * shared mapping of it.
   */
  copyRange?: (offset: number, length: number) => number;
  /**
   * The memfd's shared writable mapping (a hugetlb memfd), when there is one: with offload and a shim that copies
   * natively (copiesNatively(these options)), libuv's threads pread each range into it and hash it, and this thread only waits
   * (copyRange is not used, onChunk is called once, at the end). It must stay mapped until this returns.
   */
  destination?: number;
  /** Checked between ranges: the copy stops with the signal's reason (the boot was interrupted). */
  signal?: AbortSignal;
}

export interface CopiedIntoMemfd {
  /** Bytes copied: less than `size` when the source ended sooner. */
  bytes: number;
  /**
   * The hashing still under way on the workers, when merkle was given: finish() hashes what is left on this
   * thread and returns the digest; abandon() stops it. One of them must be called before the memfd is closed.
   */
  hashing: RangeHashing | undefined;
}

/** Returns once every byte is in the memfd; the workers may still be hashing. */
export async function copyIntoMemfd(options: CopyIntoMemfdOptions): Promise<CopiedIntoMemfd> {
  const { source, size, memfd, path, merkle } = options;
  const rangeSize = options.rangeSize ?? DEFAULT_RANGE_SIZE;
  const copyFrom = copiesNatively(options) ? { source, destination: options.destination!, path } : undefined;
  if (copyFrom === undefined && options.mapped === undefined) throw new Error('copyIntoMemfd: the memfd is not mapped');
  const hashing = merkle === undefined ? undefined
    : new RangeHashing({ merkle, fd: memfd, size, mapped: copyFrom === undefined ? options.mapped : undefined, pool: options.pool, offload: options.offload, rangeSize, copyFrom });
  if (copyFrom !== undefined) {
    try {
      const bytes = await hashing!.copyAll(options.signal);
      options.onChunk?.(bytes);
      return { bytes, hashing };
    } catch (error) {
      await hashing!.abandon();
      throw error;
    }
  }
  const copyRange = options.copyRange ?? ((offset: number, length: number) => sendfileFully(memfd, source, offset, length, path));
  let done = 0;
  try {
    while (done < size) {
      options.signal?.throwIfAborted();
      const length = Math.min(rangeSize, size - done);
      const copied = copyRange(done, length);
      done += copied;
      hashing?.publish(copied);
      options.onChunk?.(done);
      if (copied < length) break;
      // The boot copies while the TPM answers (src/boot.ts): each TPM response is handled between two ranges,
      // not after the whole image.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    hashing?.publishRest();
  } catch (error) {
    // No worker may still be reading the memfd when the caller closes it.
    await hashing?.abandon();
    throw error;
  }
  return { bytes: done, hashing };
}

/** Whether these options have libuv's threads copy and hash each range (through the shim): no mapping is needed. */
export function copiesNatively(options: Pick<CopyIntoMemfdOptions, 'destination' | 'merkle' | 'pool' | 'offload'>): boolean {
  return options.destination !== undefined && options.merkle !== undefined && options.pool === undefined && (options.offload ?? 0) > 0
    && copiesRangesNatively();
}

/** Sizes the memfd and seals its size: from then on a mapping of it cannot fault past its end (SIGBUS). */
export function prepareMemfd(memfd: number, size: number, label: string): void {
  ftruncate(memfd, size, label);
  addSeals(memfd, F_SEAL_SHRINK | F_SEAL_GROW);
}
