// One file's fs-verity hashing spread over this thread and a HashPool's workers (the job is described in
// ./worker.ts): the shared state, the publishing of copied ranges, this thread's share, and the digest. A mapped
// file (the image's memfd) is rather offloaded range by range to libuv's threads through the shim
// (hashBlocksAsync); with copyFrom, libuv's threads read and hash every range themselves (copyAll,
// copyHashRangesAsync). No worker thread to boot (each costs tens of ms of CPU), no JavaScript off this thread.
import * as fs from 'node:fs';
import { availableParallelism } from 'node:os';
import { defaultBlockHasher } from './blocks.ts';
import { NODE_HASHING } from './digest.ts';
import { blockHashing, FsVerityHasher, type MerkleOptions } from './merkle.ts';
import type { HashPool } from './pool.ts';
import { CONTROL_SLOTS, COPIED, hashRanges, NEXT, STOP, type RangeDeps, type RangeJob } from './worker.ts';
import { SysError } from '../errors.ts';
import { blockHashingShim, type NativeBlockHashing } from '../sys/native.ts';

/** The shim hashes ranges on libuv's threads (RangeHashingOptions.offload): no HashPool is needed for a mapped file. */
export function offloadsNatively(): boolean {
  return blockHashingShim()?.hashBlocksAsync !== undefined;
}

/** libuv's pool size when none is set (deps/uv/src/threadpool.c: default_threads). */
const LIBUV_DEFAULT_THREADS = 4;

/** The pool's size as sizeThreadPool() started it; undefined before (then the environment's, or libuv's default). */
let startedThreads: number | undefined;

/**
 * Sizes libuv's pool for one offloaded range per CPU and two more threads, unless the environment sets its size:
 * the pool also runs the TPM device's reads and writes (src/tpm2/transport.ts), which must not wait
 * behind the image's ranges. libuv reads UV_THREADPOOL_SIZE once, when the first work is queued
 * (deps/uv/src/threadpool.c, init_once): the pool is started here with an empty hashing job, then the variable is
 * taken back, so that nothing this process starts later (the real init, as PID 1) inherits it. Without the shim
 * nothing is offloaded and the pool is left alone.
 */
export function sizeThreadPool(cpus = availableParallelism()): void {
  const hashBlocksAsync = blockHashingShim()?.hashBlocksAsync;
  if (process.env.UV_THREADPOOL_SIZE !== undefined || startedThreads !== undefined || hashBlocksAsync === undefined) return;
  const threads = Math.max(LIBUV_DEFAULT_THREADS, cpus + 2);
  process.env.UV_THREADPOOL_SIZE = String(threads);
  try {
    const none = new Uint8Array(0);
    void hashBlocksAsync(none, 4096, 'sha256', none, none);
    startedThreads = threads;
  } finally {
    delete process.env.UV_THREADPOOL_SIZE;
  }
}

/** At most this many ranges at once on libuv's threads (RangeHashingOptions.offload): two of them left to the TPM. */
export function offloadLimit(wanted: number): number {
  const threads = startedThreads ?? (Number(process.env.UV_THREADPOOL_SIZE) || LIBUV_DEFAULT_THREADS);
  return Math.max(1, Math.min(wanted, threads - 2));
}

/** The shim also copies on libuv's threads (RangeHashingOptions.copyFrom). */
export function copiesRangesNatively(): boolean {
  return blockHashingShim()?.copyHashRangesAsync !== undefined;
}

function nativeCopyError(error: unknown, path: string): unknown {
  const errno = (error as { errno?: unknown } | undefined)?.errno;
  return typeof errno === 'number' ? new SysError('pread64', errno, path) : error;
}

/** Ranges of 1 MiB: few enough that claiming costs nothing, small enough that every thread gets a share. */
export const DEFAULT_RANGE_SIZE = 1 << 20;

let mappingIds = 0;

export interface RangeHashingOptions {
  merkle: MerkleOptions;
  fd: number;
  /** Bytes to hash. */
  size: number;
  /**
   * The file as mapped here: ranges are hashed in place, and the workers map it too. The file must not shrink
   * while mapped (a memfd sealed with F_SEAL_SHRINK). Then the ranges become claimable only as they are
   * published; without a mapping they are read with pread and all claimable at once.
   */
  mapped?: Uint8Array;
  pool?: HashPool;
  /**
   * A mapped file and no pool: at most this many ranges hashed at once on libuv's threads (offloadsNatively()),
   * while this thread copies or hashes too. 0 or absent: none.
   */
  offload?: number;
  rangeSize?: number;
  /**
   * With offload, when the shim has copyHashRangesAsync (copiesRangesNatively()): libuv's threads read the ranges
   * themselves, each one pread from `source` into `destination` (a shared writable mapping of the file, kept until
   * copyAll() settles) at its offset, then hashed by the same thread; without a destination, into a buffer of the
   * thread's own (a file only hashed). copyAll() runs it.
   */
  copyFrom?: { source: number; destination?: number; path: string };
}

interface Offload {
  limit: number;
  hashBlocksAsync: NonNullable<NativeBlockHashing['hashBlocksAsync']>;
  copy: (NonNullable<RangeHashingOptions['copyFrom']> & { copyHashRangesAsync: NonNullable<NativeBlockHashing['copyHashRangesAsync']> }) | undefined;
  /** Absent with copy: the ranges are hashed where they are copied to. */
  mapped: Uint8Array | undefined;
  digests: Uint8Array;
  inFlight: Set<Promise<void>>;
  hashed: number;
  failed?: { error: unknown };
}

export class RangeHashing {
  readonly #job: RangeJob;
  readonly #control: Int32Array;
  readonly #lengths: Int32Array;
  readonly #merkle: MerkleOptions;
  readonly #deps: RangeDeps;
  readonly #workers: Promise<number> | undefined;
  #published = 0;
  #hashedAhead = 0;
  #aheadError: { error: unknown } | undefined;
  readonly #offload: Offload | undefined;

  /** Starts the pool's workers on the job at once (they wait for published ranges). */
  constructor(options: RangeHashingOptions) {
    const hashing = blockHashing(options.merkle);
    const rangeSize = options.rangeSize ?? DEFAULT_RANGE_SIZE;
    if (rangeSize % hashing.blockSize !== 0) throw new Error(`range size ${rangeSize} is not a multiple of the block size ${hashing.blockSize}`);
    const ranges = Math.ceil(options.size / rangeSize);
    const blocks = Math.ceil(options.size / hashing.blockSize);
    this.#job = {
      hashing, size: options.size, rangeSize, ranges, fd: options.fd,
      mapping: options.mapped === undefined ? undefined : { id: ++mappingIds, size: options.mapped.length },
      state: new SharedArrayBuffer(CONTROL_SLOTS * 4),
      lengths: new SharedArrayBuffer(ranges * 4),
      digests: new SharedArrayBuffer(blocks * hashing.digestSize),
    };
    this.#control = new Int32Array(this.#job.state);
    this.#lengths = new Int32Array(this.#job.lengths);
    if (options.mapped === undefined) this.#control[COPIED] = ranges;
    this.#merkle = options.merkle;
    const mapped = options.mapped;
    this.#deps = {
      fs,
      crypto: NODE_HASHING,
      hashDataBlocks: defaultBlockHasher(),
      mapping: mapped === undefined ? undefined : () => mapped,
    };
    this.#workers = options.pool?.run(this.#job);
    const shim = blockHashingShim();
    const hashBlocksAsync = shim?.hashBlocksAsync;
    const { copyFrom } = options;
    this.#offload = (mapped === undefined && copyFrom === undefined) || options.pool !== undefined || (options.offload ?? 0) < 1 || hashBlocksAsync === undefined ? undefined
      : { limit: options.offload!, hashBlocksAsync, copy: undefined, mapped, digests: new Uint8Array(this.#job.digests), inFlight: new Set(), hashed: 0 };
    if (copyFrom !== undefined) {
      const copyHashRangesAsync = shim?.copyHashRangesAsync;
      if (this.#offload === undefined || copyHashRangesAsync === undefined || mapped !== undefined) {
        throw new Error('RangeHashing: copyFrom needs offload, no mapping, and a shim with copyHashRangesAsync');
      }
      this.#offload.copy = { ...copyFrom, copyHashRangesAsync };
    }
    // Observed by finish() or abandon(); not an unhandled rejection meanwhile.
    this.#workers?.catch(() => undefined);
  }

  /** Mapped file: the next range holds `length` bytes now (less than rangeSize only for the last). */
  publish(length: number): void {
    if (this.#published >= this.#job.ranges) throw new Error('RangeHashing: every range is published already');
    this.#lengths[this.#published] = length;
    this.#published += 1;
    Atomics.store(this.#control, COPIED, this.#published);
    Atomics.notify(this.#control, COPIED);
    this.#dispatch();
  }

  /** Offload: claims published ranges for libuv's threads, up to the limit in flight (again as each one ends). */
  #dispatch(): void {
    const offload = this.#offload;
    if (offload?.mapped === undefined) return;
    const { hashing, rangeSize } = this.#job;
    while (offload.inFlight.size < offload.limit && offload.failed === undefined && Atomics.load(this.#control, STOP) === 0) {
      // Claims are made on this thread only (hashRanges here, this): no range is claimed before it is copied.
      if (Atomics.load(this.#control, NEXT) >= this.#published) return;
      const index = Atomics.add(this.#control, NEXT, 1);
      const offset = index * rangeSize;
      const length = this.#lengths[index]!;
      const first = (offset / hashing.blockSize) * hashing.digestSize;
      const out = offload.digests.subarray(first, first + Math.ceil(length / hashing.blockSize) * hashing.digestSize);
      const work: Promise<void> = offload.hashBlocksAsync(offload.mapped.subarray(offset, offset + length), hashing.blockSize, hashing.algorithm, hashing.paddedSalt, out)
        .then(() => {
          offload.hashed += 1;
        }, (error: unknown) => {
          // The range is not hashed: finish() reports this error instead of a digest.
          offload.failed ??= { error };
        })
        .finally(() => {
          offload.inFlight.delete(work);
          this.#dispatch();
        });
      offload.inFlight.add(work);
    }
  }

  /** Offload: until no range is being hashed on libuv's threads (each one that ends may start the next). */
  async #offloadSettled(): Promise<void> {
    while (this.#offload !== undefined && this.#offload.inFlight.size > 0) await Promise.all(this.#offload.inFlight);
  }

  /**
   * copyFrom: copies and hashes every range on libuv's threads, `offload` of them at once, each claiming the next
   * range itself (the shim's copyHashRangesAsync: none waits for this thread to hand it one while this thread is
   * busy with the TPM read, which left them idle for ~9 ms of a boot, measured). Returns the bytes copied up to
   * the first short range (fewer than the size: the source ended sooner). Throws the first failure (SysError of
   * pread), or the signal's reason once the ranges in flight have ended (none is started after the signal).
   */
  async copyAll(signal?: AbortSignal): Promise<number> {
    const offload = this.#offload;
    const copy = offload?.copy;
    if (offload === undefined || copy === undefined) throw new Error('RangeHashing: copyAll needs copyFrom');
    if (this.#published !== 0 || Atomics.load(this.#control, NEXT) !== 0) throw new Error('RangeHashing: copyAll runs once');
    signal?.throwIfAborted();
    const { hashing, rangeSize, ranges, size } = this.#job;
    const stop = (): void => {
      Atomics.store(this.#control, STOP, 1);
    };
    signal?.addEventListener('abort', stop, { once: true });
    let loops: PromiseSettledResult<number>[];
    try {
      // A call that throws (out of memory) stops the loops already queued, which are still awaited: none may
      // write to the destination once this returns.
      const started = Array.from({ length: offload.limit }, () => {
        try {
          return copy.copyHashRangesAsync(this.#control, NEXT, STOP, this.#lengths, copy.source, copy.destination ?? 0, size, rangeSize,
            hashing.blockSize, hashing.algorithm, hashing.paddedSalt, offload.digests);
        } catch (error) {
          stop();
          return Promise.reject(error);
        }
      });
      loops = await Promise.allSettled(started);
    } finally {
      signal?.removeEventListener('abort', stop);
    }
    signal?.throwIfAborted();
    const failed = loops.find((loop) => loop.status === 'rejected');
    if (failed !== undefined) throw nativeCopyError(failed.reason, copy.path);
    offload.hashed = loops.reduce((sum, loop) => sum + (loop.status === 'fulfilled' ? loop.value : 0), 0);
    this.#published = ranges;
    Atomics.store(this.#control, COPIED, ranges);
    let bytes = 0;
    for (const { length } of this.#filledRanges()) bytes += length;
    return bytes;
  }

  /** The ranges in order, up to and with the first short one (the file ended there): the bytes that count. */
  *#filledRanges(): Generator<{ index: number; length: number }> {
    const { rangeSize, ranges, size } = this.#job;
    for (let index = 0; index < ranges; index++) {
      const length = this.#lengths[index]!;
      yield { index, length };
      if (length < Math.min(rangeSize, size - index * rangeSize)) return;
    }
  }

  /** Mapped file that ended early: the ranges not published are empty. */
  publishRest(): void {
    while (this.#published < this.#job.ranges) this.publish(0);
  }

  /**
   * Mapped file, every range published: hashes unclaimed ranges on this thread, one per turn of the event loop,
   * until none is left or the job stops. For a thread that would otherwise wait (the boot waits for the TPM): what
   * it hashes here, finish() does not. Between two ranges, whatever the loop has to run (a TPM response) runs.
   */
  async hashAhead(): Promise<void> {
    if (this.#job.mapping === undefined || this.#published < this.#job.ranges) return;
    const none = new Uint8Array(0);
    try {
      while (hashRanges(this.#deps, this.#job, none, 1) === 1) {
        this.#hashedAhead += 1;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } catch (error) {
      // The range it claimed is not hashed: finish() reports this error instead of a digest.
      this.#aheadError = { error };
    }
  }

  /**
   * Hashes the ranges nobody has claimed yet on this thread, waits for the workers, and returns the digest of
   * the bytes up to the first short range, and their count.
   */
  async finish(): Promise<{ bytes: number; digest: Buffer; hashedHere: number; hashedByWorkers: number }> {
    if ((this.#job.mapping !== undefined || this.#offload?.copy !== undefined) && this.#published < this.#job.ranges) throw new Error('RangeHashing: ranges not published');
    // Offload: this thread takes one range per turn, so that the ranges libuv's threads finish are replaced at once.
    if (this.#offload !== undefined) await this.hashAhead();
    let hashedHere: number;
    try {
      if (this.#aheadError !== undefined) throw this.#aheadError.error;
      // copyFrom: every range was claimed by copyAll(); none is left for this thread (nor a read buffer to make).
      hashedHere = this.#offload?.copy !== undefined ? 0
        : hashRanges(this.#deps, this.#job, this.#job.mapping === undefined ? new Uint8Array(this.#job.rangeSize) : new Uint8Array(0));
    } catch (error) {
      await this.abandon();
      throw error;
    }
    hashedHere += this.#hashedAhead;
    await this.#offloadSettled();
    if (this.#offload?.failed !== undefined) throw this.#offload.failed.error;
    const hashedByWorkers = (await this.#workers) ?? this.#offload?.hashed ?? 0;
    const { hashing, rangeSize } = this.#job;
    const hasher = new FsVerityHasher(this.#merkle);
    const digests = new Uint8Array(this.#job.digests);
    let bytes = 0;
    for (const { index, length } of this.#filledRanges()) {
      const first = (index * rangeSize) / hashing.blockSize;
      hasher.addBlockDigests(digests.subarray(first * hashing.digestSize, (first + Math.ceil(length / hashing.blockSize)) * hashing.digestSize), length);
      bytes += length;
    }
    return { bytes, digest: hasher.digest(), hashedHere, hashedByWorkers };
  }

  /** Stops the workers and waits until none is still reading the file (before the caller closes it). */
  async abandon(): Promise<void> {
    Atomics.store(this.#control, STOP, 1);
    Atomics.notify(this.#control, COPIED);
    await this.#offloadSettled();
    await this.#workers?.catch(() => undefined);
  }
}
