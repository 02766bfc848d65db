// Hashing a file's fs-verity data blocks on several threads at once. The file is cut into ranges of whole blocks;
// every thread taking part (the caller's and each worker's) claims the next range with an atomic increment, hashes
// it and stores its block digests in a shared table, until none is left: the work spreads itself by how fast each
// thread is, with no message per range. A range is claimed only once the file holds it: the copying thread
// publishes how many ranges are copied, and a worker that runs ahead waits for it (Atomics.wait).
//
// A range's bytes come from a read-only mapping of the file (a memfd that already holds them, sealed against
// shrinking: the mapping cannot fault past its end) or, without one, from pread. The functions here are
// self-contained (their dependencies come in `deps`) because the workers run their source text: a single
// executable has no module file a worker could load.
import type * as nodeFs from 'node:fs';
import type * as nodeWorkerThreads from 'node:worker_threads';
import { blockHasher, hashDataBlocks, type BlockHashing, type HashFunctions } from './blocks.ts';
import type { NativeBlockHashing } from '../sys/native.ts';

/** Slots of a job's control array (Int32Array over `state`). */
export const COPIED = 0;
export const NEXT = 1;
export const STOP = 2;
export const CONTROL_SLOTS = 3;

export interface RangeJob {
  hashing: BlockHashing;
  /** Bytes to hash (read: the size fstat gave; reading stops early if the file ends sooner). */
  size: number;
  /** Bytes of a range (the last one may be shorter); a multiple of the block size. */
  rangeSize: number;
  ranges: number;
  fd: number;
  /** Present: the file is mapped (once per id: fd numbers are reused once closed) and hashed in place. */
  mapping?: { id: number; size: number };
  /** Int32Array [COPIED ranges published, NEXT range to claim, STOP when non-zero]. */
  state: SharedArrayBuffer;
  /**
   * Int32Array: each range's length in bytes. Mapped: written by the copying thread before it publishes the range.
   * Read: written by the thread that read it (less than asked at the end of the file).
   */
  lengths: SharedArrayBuffer;
  /** The block digests of the whole file, range after range. */
  digests: SharedArrayBuffer;
}

export interface RangeDeps {
  fs: Pick<typeof nodeFs, 'readSync'>;
  crypto: HashFunctions;
  /** hashDataBlocks, or the shim's native equivalent (blockHasher). */
  hashDataBlocks: typeof hashDataBlocks;
  /** The job's file, mapped; absent: ranges are read with pread. */
  mapping?: (job: RangeJob) => Uint8Array;
}

/**
 * Claims and hashes ranges until none is left, the job is stopped, or `limit` ranges are hashed; returns how many
 * this thread hashed. `scratch` (at least rangeSize bytes) receives the bytes read when the file is not mapped.
 */
export function hashRanges(deps: RangeDeps, job: RangeJob, scratch: Uint8Array, limit = Infinity): number {
  const control = new Int32Array(job.state);
  const lengths = new Int32Array(job.lengths);
  const digests = new Uint8Array(job.digests);
  const { hashing, rangeSize, ranges } = job;
  const view = job.mapping === undefined || deps.mapping === undefined ? undefined : deps.mapping(job);
  let hashed = 0;
  for (;;) {
    if (Atomics.load(control, 2 /* STOP */) !== 0 || hashed >= limit) return hashed;
    const index = Atomics.add(control, 1 /* NEXT */, 1);
    if (index >= ranges) return hashed;
    for (;;) {
      const copied = Atomics.load(control, 0 /* COPIED */);
      if (copied > index || Atomics.load(control, 2 /* STOP */) !== 0) break;
      // A timeout, so that a copying thread that died without a word cannot leave this one waiting for ever.
      Atomics.wait(control, 0 /* COPIED */, copied, 1000);
    }
    if (Atomics.load(control, 2 /* STOP */) !== 0) return hashed;
    const offset = index * rangeSize;
    let bytes: Uint8Array;
    if (view !== undefined) {
      bytes = view.subarray(offset, offset + lengths[index]!);
    } else {
      const want = job.mapping !== undefined ? lengths[index]! : Math.min(rangeSize, job.size - offset);
      // fs.readSync makes one read(2) and libuv does not retry on EINTR: continue short and interrupted reads here.
      let done = 0;
      while (done < want) {
        let n: number;
        try {
          n = deps.fs.readSync(job.fd, scratch, done, want - done, offset + done);
        } catch (error) {
          if ((error as { code?: unknown } | null)?.code === 'EINTR') continue;
          throw error;
        }
        if (n === 0) break;
        done += n;
      }
      bytes = scratch.subarray(0, done);
      if (job.mapping === undefined) lengths[index] = done;
    }
    digests.set(deps.hashDataBlocks(deps.crypto, hashing, bytes), (offset / hashing.blockSize) * hashing.digestSize);
    hashed += 1;
  }
}

export interface WorkerRequest {
  id: number;
  job: RangeJob;
}

export interface WorkerResponse {
  id: number;
  /** Ranges this worker hashed. */
  hashed?: number;
  error?: { message: string; code?: string; syscall?: string };
}

/** What a worker thread is started with: how to map files for mapped jobs, and to hash natively. */
export interface WorkerData {
  /** A path the syscall shim can be loaded from in this process (absent: mapped jobs are read with pread, blocks hashed with node:crypto). */
  shim: string | undefined;
  /** The mmap syscall's number on this architecture. */
  mmap: number;
}

/** The syscall shim as a worker thread uses it. */
export interface WorkerShim extends Partial<NativeBlockHashing> {
  syscall(nr: number, ...args: unknown[]): number;
  mapping(address: number, length: number): ArrayBuffer;
}

/** Loads the shim in this worker thread, from where the main thread has it; undefined when it has none. */
export function workerShim(deps: { os: { constants: { dlopen: { RTLD_NOW?: number } } }; data: WorkerData | undefined }): WorkerShim | undefined {
  const path = deps.data?.shim;
  if (path === undefined) return undefined;
  const module = { exports: {} as WorkerShim };
  process.dlopen(module, path, deps.os.constants.dlopen.RTLD_NOW);
  return module.exports;
}

/**
 * The worker's mapping of a mapped job's file: one at a time, made again for a new id. The shim's mapping()
 * ArrayBuffer owns it: dropping it unmaps (when collected, or when the thread ends). Private and read-only, as
 * src/sys/mmap.ts explains.
 */
export function workerMapping(deps: { shim: WorkerShim | undefined; data: WorkerData | undefined }): ((job: RangeJob) => Uint8Array) | undefined {
  const { shim, data } = deps;
  if (shim === undefined || data === undefined) return undefined;
  let current: { id: number; view: Uint8Array } | undefined;
  return (job) => {
    const { id, size } = job.mapping!;
    if (current === undefined || current.id !== id) {
      current = undefined;
      const PROT_READ = 1;
      const MAP_PRIVATE = 2;
      const MAP_NORESERVE = 0x4000; // a hugetlb memfd: no copy-on-write reservation (src/sys/mmap.ts)
      const address = size === 0 ? 0 : shim.syscall(data.mmap, 0, size, PROT_READ, MAP_PRIVATE | MAP_NORESERVE, job.fd, 0);
      current = { id, view: size === 0 ? new Uint8Array(0) : new Uint8Array(shim.mapping(address, size)) };
    }
    return current.view;
  };
}

/** The worker thread's body: runs each job it is given, in order, and answers with its count or its error. */
export function workerMain(deps: RangeDeps & { workerThreads: typeof nodeWorkerThreads; hashRanges: typeof hashRanges }): void {
  const port = deps.workerThreads.parentPort!;
  let scratch = new Uint8Array(0);
  port.on('message', (request: WorkerRequest) => {
    const { job } = request;
    let response: WorkerResponse;
    try {
      if ((job.mapping === undefined || deps.mapping === undefined) && scratch.length < job.rangeSize) scratch = new Uint8Array(job.rangeSize);
      response = { id: request.id, hashed: deps.hashRanges(deps, job, scratch) };
    } catch (error) {
      // The others stop too: the job has failed.
      const control = new Int32Array(job.state);
      Atomics.store(control, 2 /* STOP */, 1);
      Atomics.notify(control, 0 /* COPIED */);
      const { message, code, syscall } = error as { message?: unknown; code?: unknown; syscall?: unknown };
      response = {
        id: request.id,
        error: {
          message: String(message ?? error),
          code: typeof code === 'string' ? code : undefined,
          syscall: typeof syscall === 'string' ? syscall : undefined,
        },
      };
    }
    port.postMessage(response);
  });
}

/** Source text of a hashing worker (run with `new Worker(WORKER_SOURCE, { eval: true })`, CommonJS). */
export const WORKER_SOURCE = `'use strict';
const workerThreads = require('node:worker_threads');
const shim = (${workerShim.toString()})({ os: require('node:os'), data: workerThreads.workerData });
const deps = { fs: require('node:fs'), crypto: require('node:crypto'), workerThreads };
deps.mapping = (${workerMapping.toString()})({ shim, data: workerThreads.workerData });
deps.hashDataBlocks = (${blockHasher.toString()})({ hashDataBlocks: ${hashDataBlocks.toString()}, shim });
deps.hashRanges = ${hashRanges.toString()};
(${workerMain.toString()})(deps);
`;
