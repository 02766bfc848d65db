// Reads a file range by range, hashing (fs-verity) and optionally copying every range: the digest is built in file
// order while the ranges are hashed concurrently by a HashPool. With a pool, the workers read and hash and this
// thread writes: all writes to one file serialise on its inode lock, so a worker that wrote would sleep on it
// instead of hashing. With no pool, the same work runs here, inline.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { writeFully } from '../sys/io.ts';
import { hashDataBlocks } from './blocks.ts';
import { blockHashing, FsVerityHasher, type MerkleOptions } from './merkle.ts';
import type { HashPool } from './pool.ts';
import { processChunk, type ChunkResult, type ChunkTask } from './worker.ts';

/**
 * Large reads amortise the per-call and per-message costs; a multiple of every block size up to 64 KiB. Not larger:
 * each range in flight has its own buffer, and fresh memory costs page faults (in a VM, ~2 ms per MiB first touched).
 */
export const DEFAULT_CHUNK_SIZE = 1 << 20;

export interface CopyAndHashOptions {
  /** The source, read with pread from offset 0. */
  fd: number;
  /** How many bytes to read: the size fstat gave. Reading stops early if the file ends sooner. */
  size: number;
  /** The fs-verity parameters; absent: copy only, no digest. */
  merkle: MerkleOptions | undefined;
  /** Where to write the bytes (at the current file offset, from 0 on: a fresh memfd). */
  destination?: number;
  pool?: HashPool;
  chunkSize?: number;
  /** Called in file order after each range is done (tests use it to change the file at a known point). */
  onChunk?: (done: number) => void;
}

export interface CopyAndHashResult {
  /** Bytes read: less than `size` when the file ended sooner. */
  bytes: number;
  /** The fs-verity digest of those bytes, when `merkle` was given. */
  digest: Buffer | undefined;
}

export async function copyAndHash(options: CopyAndHashOptions): Promise<CopyAndHashResult> {
  const hashing = options.merkle === undefined ? undefined : blockHashing(options.merkle);
  const hasher = options.merkle === undefined ? undefined : new FsVerityHasher(options.merkle);
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (hashing !== undefined && chunkSize % hashing.blockSize !== 0) {
    throw new Error(`chunk size ${chunkSize} is not a multiple of the block size ${hashing.blockSize}`);
  }
  const { fd, size, destination, pool } = options;
  let done = 0;
  /** Takes one range's result, in file order; false when the file ended early. */
  const accept = (task: ChunkTask, result: ChunkResult, bytes: Uint8Array): boolean => {
    if (destination !== undefined) writeFully(destination, bytes.subarray(0, result.bytes));
    if (hasher !== undefined) hasher.addBlockDigests(result.digests!, result.bytes);
    done += result.bytes;
    options.onChunk?.(done);
    return result.bytes === task.length;
  };

  const deps = { fs, crypto, hashDataBlocks };
  if (pool === undefined) {
    const scratch = new Uint8Array(Math.min(chunkSize, size));
    for (let offset = 0; offset < size; offset += chunkSize) {
      const task: ChunkTask = { hashing, length: Math.min(chunkSize, size - offset), read: { fd, offset } };
      if (!accept(task, processChunk(deps, task, scratch), scratch)) break;
    }
    return { bytes: done, digest: hasher?.digest() };
  }

  // Two ranges queued per worker so that none waits for this thread; each range has its own buffer. This
  // thread hashes too, one range at a time, whenever the oldest range is not back yet: it would otherwise sit idle
  // (and while the workers boot, ~25 ms each for a V8 isolate and Node's bootstrap, it does all the work). Between
  // two such ranges it yields to the event loop, or the workers' results would wait and the workers starve
  // (measured: without the yield, the worker did 30 of 256 ranges).
  const queued = pool.size * 2;
  // Buffers for the ranges in flight. A worker gets one (transferred) only when the bytes must come back to be
  // written; for a digest alone it reads into its own.
  const free = Array.from({ length: Math.min(queued + 4, Math.ceil(size / chunkSize)) }, () => new ArrayBuffer(chunkSize));
  interface Entry { task: ChunkTask; slot: ArrayBuffer | undefined; result: Promise<ChunkResult>; pooled: boolean; settled: boolean }
  const inFlight: Entry[] = [];
  let pooled = 0;
  let next = 0;
  let ended = false;
  const take = (toPool: boolean): void => {
    const slot = free.pop()!;
    const task: ChunkTask = { hashing, length: Math.min(chunkSize, size - next), read: { fd, offset: next } };
    next += task.length;
    if (toPool) {
      if (destination !== undefined) task.buffer = slot;
      const entry: Entry = { task, slot: destination === undefined ? slot : undefined, result: pool.run(task), pooled: true, settled: false };
      entry.result.then(() => (entry.settled = true), () => (entry.settled = true));
      inFlight.push(entry);
      pooled += 1;
    } else {
      const result = processChunk(deps, task, new Uint8Array(slot));
      inFlight.push({ task, slot, result: Promise.resolve({ ...result, buffer: slot }), pooled: false, settled: true });
    }
  };
  try {
    for (;;) {
      while (!ended && next < size && free.length > 0 && pool.ready && pooled < queued) take(true);
      const oldest = inFlight[0];
      if ((oldest === undefined || !oldest.settled) && !ended && next < size && free.length > 0) {
        take(false);
        // Let the workers' messages in (they are macrotasks): a finished worker gets its next range at once.
        await new Promise(setImmediate);
        continue;
      }
      if (oldest === undefined) break;
      inFlight.shift();
      if (oldest.pooled) pooled -= 1;
      const result = await oldest.result;
      const slot = result.buffer ?? oldest.slot!;
      if (!ended && !accept(oldest.task, result, new Uint8Array(slot))) ended = true;
      free.push(slot);
    }
  } finally {
    // On failure or an early end, let the ranges already posted finish before the caller closes any fd.
    await Promise.allSettled(inFlight.map((entry) => entry.result));
  }
  return { bytes: done, digest: hasher?.digest() };
}
