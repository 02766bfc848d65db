// One file's fs-verity hashing spread over this thread and a HashPool's workers (the job is described in
// ./worker.ts): the shared state, the publishing of copied ranges, this thread's share, and the digest.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { defaultBlockHasher } from './blocks.ts';
import { blockHashing, FsVerityHasher, type MerkleOptions } from './merkle.ts';
import type { HashPool } from './pool.ts';
import { CONTROL_SLOTS, COPIED, hashRanges, STOP, type RangeDeps, type RangeJob } from './worker.ts';

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
  rangeSize?: number;
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
    this.#deps = { fs, crypto, hashDataBlocks: defaultBlockHasher(), mapping: mapped === undefined ? undefined : () => mapped };
    this.#workers = options.pool?.run(this.#job);
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
    if (this.#job.mapping !== undefined && this.#published < this.#job.ranges) throw new Error('RangeHashing: ranges not published');
    let hashedHere: number;
    try {
      if (this.#aheadError !== undefined) throw this.#aheadError.error;
      hashedHere = hashRanges(this.#deps, this.#job, this.#job.mapping === undefined ? new Uint8Array(this.#job.rangeSize) : new Uint8Array(0));
    } catch (error) {
      await this.abandon();
      throw error;
    }
    hashedHere += this.#hashedAhead;
    const hashedByWorkers = (await this.#workers) ?? 0;
    const { hashing, rangeSize, ranges } = this.#job;
    const hasher = new FsVerityHasher(this.#merkle);
    const digests = new Uint8Array(this.#job.digests);
    let bytes = 0;
    for (let index = 0; index < ranges; index++) {
      const length = this.#lengths[index]!;
      const first = (index * rangeSize) / hashing.blockSize;
      hasher.addBlockDigests(digests.subarray(first * hashing.digestSize, (first + Math.ceil(length / hashing.blockSize)) * hashing.digestSize), length);
      bytes += length;
      if (length < Math.min(rangeSize, this.#job.size - index * rangeSize)) break;
    }
    return { bytes, digest: hasher.digest(), hashedHere, hashedByWorkers };
  }

  /** Stops the workers and waits until none is still reading the file (before the caller closes it). */
  async abandon(): Promise<void> {
    Atomics.store(this.#control, STOP, 1);
    Atomics.notify(this.#control, COPIED);
    await this.#workers?.catch(() => undefined);
  }
}
