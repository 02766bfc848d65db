// Copies the image into its memfd in the kernel (sendfile) and hashes what the memfd holds: each range, once
// copied, is published to the hash workers (src/verity/ranges.ts), which hash it while the next one is copied.
// The hashing reads the memfd's own pages through read-only mappings (this thread's and each worker's): the bytes
// hashed are the very bytes the memfd holds, with no copy in userspace. The memfd's size is set and sealed
// (SHRINK|GROW) first, so no mapping can fault past the end of the file.
import { ftruncate, sendfileFully } from '../sys/io.ts';
import { addSeals, F_SEAL_GROW, F_SEAL_SHRINK } from '../sys/memfd.ts';
import type { MerkleOptions } from '../verity/merkle.ts';
import type { HashPool } from '../verity/pool.ts';
import { DEFAULT_RANGE_SIZE, RangeHashing } from '../verity/ranges.ts';

export interface CopyIntoMemfdOptions {
  source: number;
  /** Bytes to copy: the source's size from fstat. Copying stops early if the source ends sooner. */
  size: number;
  /** The memfd, sized and sealed by prepareMemfd. */
  memfd: number;
  /** The memfd mapped (mapReadOnly), after prepareMemfd: at least `size` bytes (a hugetlb memfd: whole pages). */
  mapped: Uint8Array;
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
  const hashing = merkle === undefined ? undefined
    : new RangeHashing({ merkle, fd: memfd, size, mapped: options.mapped, pool: options.pool, offload: options.offload, rangeSize });
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

/** Sizes the memfd and seals its size: from then on a mapping of it cannot fault past its end (SIGBUS). */
export function prepareMemfd(memfd: number, size: number, label: string): void {
  ftruncate(memfd, size, label);
  addSeals(memfd, F_SEAL_SHRINK | F_SEAL_GROW);
}
