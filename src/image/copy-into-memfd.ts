// Copies the image into its memfd in the kernel (sendfile) and hashes what the memfd holds, range by range, while
// the next range is being copied. The hashing reads the memfd's own pages through read-only mappings (this
// thread's and each worker's): the bytes hashed are the very bytes the memfd holds, with no copy in userspace.
// The memfd's size is set and sealed (SHRINK|GROW) first, so no mapping can fault past the end of the file.
import * as crypto from 'node:crypto';
import { ftruncate, sendfileFully } from '../sys/io.ts';
import { addSeals, F_SEAL_GROW, F_SEAL_SHRINK } from '../sys/memfd.ts';
import { hashDataBlocks } from '../verity/blocks.ts';
import { blockHashing, FsVerityHasher, type MerkleOptions } from '../verity/merkle.ts';
import type { HashPool } from '../verity/pool.ts';
import type { ChunkResult } from '../verity/worker.ts';

/** Ranges of 1 MiB: large enough to amortise a worker message, small enough that the workers start early. */
export const COPY_CHUNK_SIZE = 1 << 20;

export interface CopyIntoMemfdOptions {
  source: number;
  /** Bytes to copy: the source's size from fstat. Copying stops early if the source ends sooner. */
  size: number;
  /** An empty memfd with sealing allowed: it is sized to `size` and sealed against shrinking and growing. */
  memfd: number;
  /** Names the source in errors. */
  path: string;
  /** The fs-verity parameters; absent: copy only (the kernel verifies an fs-verity source as it is read). */
  merkle: MerkleOptions | undefined;
  /** Worker threads to hash on besides this thread. */
  pool?: HashPool;
  chunkSize?: number;
  /** Called after each range is copied (tests change the source at a known point). */
  onChunk?: (done: number) => void;
}

export interface CopyIntoMemfdResult {
  /** Bytes copied: less than `size` when the source ended sooner. */
  bytes: number;
  digest: Buffer | undefined;
}

let mappingIds = 0;

/** `view` is a read-only mapping of the memfd, made after the memfd was sized (prepareMemfd). */
export async function copyIntoMemfd(options: CopyIntoMemfdOptions, view: Uint8Array): Promise<CopyIntoMemfdResult> {
  const { source, size, memfd, path, pool } = options;
  const chunkSize = options.chunkSize ?? COPY_CHUNK_SIZE;
  const hashing = options.merkle === undefined ? undefined : blockHashing(options.merkle);
  if (hashing !== undefined && chunkSize % hashing.blockSize !== 0) {
    throw new Error(`chunk size ${chunkSize} is not a multiple of the block size ${hashing.blockSize}`);
  }
  const id = ++mappingIds;
  // The digests of each range, in file order: computed here, or a worker's answer to come.
  const ranges: (Uint8Array | Promise<ChunkResult>)[] = [];
  let done = 0;
  try {
    while (done < size) {
      const offset = done;
      const length = Math.min(chunkSize, size - offset);
      const copied = sendfileFully(memfd, source, offset, length, path);
      done += copied;
      options.onChunk?.(done);
      if (hashing !== undefined && copied > 0) {
        // Copying outpaces hashing: a worker gets the range if it has room (two queued each), else this thread
        // hashes it before copying on.
        if (pool !== undefined && pool.ready && pool.inFlight < 2 * pool.size) {
          ranges.push(pool.run({ hashing, length: copied, mapped: { fd: memfd, size, offset, id } }));
        } else {
          ranges.push(hashDataBlocks(crypto, hashing, view.subarray(offset, offset + copied)));
        }
        // Let the workers' messages in (macrotasks): that one is online, that one is done and wants a range.
        if (pool !== undefined) await new Promise(setImmediate);
      }
      if (copied < length) break;
    }
  } finally {
    // Whatever happened, no worker may still be reading the memfd when the caller closes it.
    await Promise.allSettled(ranges);
  }
  if (options.merkle === undefined) return { bytes: done, digest: undefined };
  const hasher = new FsVerityHasher(options.merkle);
  let hashed = 0;
  for (const range of ranges) {
    const digests = range instanceof Uint8Array ? range : (await range).digests!;
    const length = Math.min(chunkSize, done - hashed);
    hasher.addBlockDigests(digests, length);
    hashed += length;
  }
  return { bytes: done, digest: hasher.digest() };
}

/** Sizes the memfd and seals its size: from then on a mapping of it cannot fault past its end (SIGBUS). */
export function prepareMemfd(memfd: number, size: number, label: string): void {
  ftruncate(memfd, size, label);
  addSeals(memfd, F_SEAL_SHRINK | F_SEAL_GROW);
}
