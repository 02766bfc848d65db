// One unit of the copy-and-hash work, and the worker thread that runs it. A chunk is a range of whole fs-verity
// data blocks: pread it from the source (or take the bytes given, or view them in a shared mapping of a memfd
// that already holds them), hash its blocks, pwrite the same bytes to the destination. The bytes hashed are
// exactly the bytes written. The functions here are self-contained (their
// dependencies come in `deps`) because the workers run their source text: a single executable has no module
// file a worker could load.
import type * as nodeFs from 'node:fs';
import type * as nodeWorkerThreads from 'node:worker_threads';
import { hashDataBlocks, type BlockHashing, type HashFunctions } from './blocks.ts';

export interface ChunkTask {
  /** Absent: copy only (the source is verified by the kernel). */
  hashing?: BlockHashing;
  length: number;
  /** Read `length` bytes from this fd at this offset; stops short at the end of the file. */
  read?: { fd: number; offset: number };
  /**
   * Where to read into; the buffer travels (transferred, not copied) to the worker and back with the result, for the
   * posting thread to write out. Without it a worker reads into a buffer of its own. (Not a SharedArrayBuffer: reading
   * and hashing in one cost a worker ~15% more CPU, measured.)
   */
  buffer?: ArrayBuffer;
  /** ...or hash and write these bytes. */
  data?: Uint8Array;
  /**
   * ...or hash bytes [offset, offset + length) of this file, which holds them already (a memfd sealed against
   * shrinking: mapping it cannot fault past its end). The thread maps the file once per `id`, read-only (see
   * src/sys/mmap.ts), and hashes the pages in place: no copy.
   */
  mapped?: MappedRange;
  /** Write the bytes to this fd at this offset. */
  write?: { fd: number; offset: number };
}

export interface MappedRange {
  fd: number;
  /** The file's size: the length mapped. */
  size: number;
  offset: number;
  /** Names one mapping: a new id maps again (fd numbers are reused once closed). */
  id: number;
}

export interface ChunkResult {
  /** Bytes read (or given): less than the task's length only at the end of the source file. */
  bytes: number;
  digests: Uint8Array | undefined;
  /** The task's buffer, back from the worker, holding the bytes. */
  buffer?: ArrayBuffer;
}

export interface ChunkDeps {
  fs: Pick<typeof nodeFs, 'readSync' | 'writeSync'>;
  crypto: HashFunctions;
  hashDataBlocks: typeof hashDataBlocks;
  /** The whole file of a mapped task, mapped; without it, the range is read with pread (a copy). */
  mapping?: (range: MappedRange) => Uint8Array;
}

/** Runs one task; `scratch` (at least task.length bytes) receives the bytes read. */
export function processChunk(deps: ChunkDeps, task: ChunkTask, scratch: Uint8Array): ChunkResult {
  // fs.readSync/writeSync make one read(2)/write(2) each and libuv does not retry reads on EINTR:
  // continue short transfers and retry interrupted ones here.
  const interrupted = (error: unknown) => (error as { code?: unknown } | null)?.code === 'EINTR';
  let bytes: Uint8Array;
  if (task.read !== undefined) {
    const { fd, offset } = task.read;
    let done = 0;
    while (done < task.length) {
      let n: number;
      try {
        n = deps.fs.readSync(fd, scratch, done, task.length - done, offset + done);
      } catch (error) {
        if (interrupted(error)) continue;
        throw error;
      }
      if (n === 0) break;
      done += n;
    }
    bytes = scratch.subarray(0, done);
  } else if (task.data !== undefined) {
    bytes = task.data.subarray(0, task.length);
  } else if (task.mapped !== undefined && deps.mapping !== undefined) {
    const { offset } = task.mapped;
    bytes = deps.mapping(task.mapped).subarray(offset, offset + task.length);
  } else if (task.mapped !== undefined) {
    return processChunk(deps, { ...task, mapped: undefined, read: { fd: task.mapped.fd, offset: task.mapped.offset } }, scratch);
  } else {
    throw new Error('chunk task without a source');
  }
  const digests = task.hashing === undefined ? undefined : deps.hashDataBlocks(deps.crypto, task.hashing, bytes);
  if (task.write !== undefined) {
    const { fd, offset } = task.write;
    let done = 0;
    while (done < bytes.length) {
      let n: number;
      try {
        n = deps.fs.writeSync(fd, bytes, done, bytes.length - done, offset + done);
      } catch (error) {
        if (interrupted(error)) continue;
        throw error;
      }
      if (n === 0) throw Object.assign(new Error('write made no progress'), { code: 'ENOSPC', syscall: 'write' });
      done += n;
    }
  }
  return { bytes: bytes.length, digests };
}

export interface WorkerRequest {
  id: number;
  task: ChunkTask;
}

export interface WorkerResponse {
  id: number;
  result?: ChunkResult;
  error?: { message: string; code?: string; syscall?: string };
}

/** The worker thread's body: answers each request, in order, with its result or its error. */
export function workerMain(deps: ChunkDeps & { workerThreads: typeof nodeWorkerThreads; processChunk: typeof processChunk }): void {
  const port = deps.workerThreads.parentPort!;
  let scratch = new Uint8Array(0);
  port.on('message', (request: WorkerRequest) => {
    let response: WorkerResponse;
    const { task } = request;
    try {
      if (task.buffer === undefined && (task.read ?? task.mapped) !== undefined && scratch.length < task.length) scratch = new Uint8Array(task.length);
      const result = deps.processChunk(deps, task, task.buffer === undefined ? scratch : new Uint8Array(task.buffer));
      response = { id: request.id, result: task.buffer === undefined ? result : { ...result, buffer: task.buffer } };
    } catch (error) {
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
    port.postMessage(response, task.buffer === undefined || response.result === undefined ? [] : [task.buffer]);
  });
}

/** What a worker thread is started with: how to map files for mapped tasks. */
export interface WorkerData {
  /** A path the syscall shim can be loaded from in this process (absent: mapped ranges are read with pread). */
  shim: string | undefined;
  /** The mmap syscall's number on this architecture. */
  mmap: number;
}

/**
 * The worker's mapping of a mapped task's file: one at a time, made again for a new id. The shim's mapping()
 * ArrayBuffer owns it: dropping it unmaps (when collected, or when the thread ends).
 */
export function workerMapping(deps: { os: { constants: { dlopen: { RTLD_NOW?: number } } }; data: WorkerData | undefined }): ((range: MappedRange) => Uint8Array) | undefined {
  const data = deps.data;
  if (data?.shim === undefined) return undefined;
  const path = data.shim;
  interface Shim {
    syscall(nr: number, ...args: unknown[]): number;
    mapping(address: number, length: number): ArrayBuffer;
  }
  let shim: Shim | undefined;
  let current: { id: number; view: Uint8Array } | undefined;
  return (range) => {
    if (current === undefined || current.id !== range.id) {
      if (shim === undefined) {
        const module = { exports: {} as Shim };
        process.dlopen(module, path, deps.os.constants.dlopen.RTLD_NOW);
        shim = module.exports;
      }
      current = undefined;
      const PROT_READ = 1;
      const MAP_PRIVATE = 2;
      const address = shim!.syscall(data.mmap, 0, range.size, PROT_READ, MAP_PRIVATE, range.fd, 0);
      current = { id: range.id, view: new Uint8Array(shim!.mapping(address, range.size)) };
    }
    return current.view;
  };
}

/** Source text of a hashing worker (run with `new Worker(WORKER_SOURCE, { eval: true })`, CommonJS). */
export const WORKER_SOURCE = `'use strict';
const deps = { fs: require('node:fs'), crypto: require('node:crypto'), workerThreads: require('node:worker_threads') };
deps.mapping = (${workerMapping.toString()})({ os: require('node:os'), data: deps.workerThreads.workerData });
deps.hashDataBlocks = ${hashDataBlocks.toString()};
deps.processChunk = ${processChunk.toString()};
(${workerMain.toString()})(deps);
`;
