// The fs-verity digest of a file read with pread, hashed on this thread and a HashPool's workers at once.
import type { MerkleOptions } from './merkle.ts';
import type { HashPool } from './pool.ts';
import { RangeHashing } from './ranges.ts';

export interface HashFileOptions {
  fd: number;
  /** How many bytes to hash: the size fstat gave. Reading stops early if the file ends sooner. */
  size: number;
  merkle: MerkleOptions;
  pool?: HashPool;
  rangeSize?: number;
}

/**
 * The digest of the bytes read, their count (less than `size` when the file ended sooner), and how many ranges
 * this thread and the workers hashed.
 */
export async function hashFile(options: HashFileOptions): Promise<Awaited<ReturnType<RangeHashing['finish']>>> {
  const { fd, size, merkle, pool, rangeSize } = options;
  return new RangeHashing({ merkle, fd, size, pool, rangeSize }).finish();
}
