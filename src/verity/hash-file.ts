// The fs-verity digest of a file read with pread: with the shim, on libuv's threads, each reading and hashing the
// ranges it claims (no worker thread to start, nothing asked of this thread); without it, on this thread and a
// HashPool's workers at once.
import { availableParallelism } from 'node:os';
import { blockHashing, type MerkleOptions } from './merkle.ts';
import type { HashPool } from './pool.ts';
import { copiesRangesNatively, DEFAULT_RANGE_SIZE, offloadLimit, RangeHashing } from './ranges.ts';

export interface HashFileOptions {
  fd: number;
  /** How many bytes to hash: the size fstat gave. Reading stops early if the file ends sooner. */
  size: number;
  merkle: MerkleOptions;
  /** Names the file in errors. */
  path: string;
  /** Without the shim: workers to hash on besides this thread. */
  pool?: HashPool;
  rangeSize?: number;
}

/**
 * The digest of the bytes read, their count (less than `size` when the file ended sooner), and how many ranges
 * this thread and the other threads hashed.
 */
export async function hashFile(options: HashFileOptions): Promise<Awaited<ReturnType<RangeHashing['finish']>>> {
  const { fd, size, merkle, pool, path } = options;
  // Ranges are whole blocks: a block larger than the default range (fsverity-utils takes up to 2^30) is one range.
  const rangeSize = options.rangeSize ?? Math.max(DEFAULT_RANGE_SIZE, blockHashing(merkle).blockSize);
  if (pool === undefined && copiesRangesNatively()) {
    const hashing = new RangeHashing({ merkle, fd, size, rangeSize, offload: offloadLimit(availableParallelism()), copyFrom: { source: fd, path } });
    await hashing.copyAll();
    return hashing.finish();
  }
  return new RangeHashing({ merkle, fd, size, pool, rangeSize }).finish();
}
