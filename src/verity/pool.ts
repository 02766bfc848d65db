// A pool of hashing worker threads (worker_threads), so that hashing runs on the other cores while this thread
// and the kernel move bytes. Each worker runs the tasks posted to it in order. Workers stay referenced while the pool
// is open: toggling ref()/unref() per task measurably slowed the pipeline (~320 vs ~550 ms for 256 MiB).
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import type { ChunkResult, ChunkTask, WorkerRequest, WorkerResponse } from './worker.ts';
import { WORKER_SOURCE, type WorkerData } from './worker.ts';
import { shimPathForThreads, syscallNumber } from '../sys/native.ts';

/** A task that failed in a worker: the worker's error with its errno code and system call, when it has them. */
export class ChunkError extends Error {
  readonly code: string | undefined;
  readonly syscall: string | undefined;

  constructor(message: string, code?: string, syscall?: string) {
    super(message);
    this.name = 'ChunkError';
    this.code = code;
    this.syscall = syscall;
  }
}

interface Pending {
  resolve: (result: ChunkResult) => void;
  reject: (error: Error) => void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
  failed: Error | undefined;
}

/** Below this, starting worker threads costs more than it saves. */
export const PARALLEL_THRESHOLD = 16 << 20;

/**
 * Workers worth starting besides the calling thread, which hashes too (copyAndHash): one per other CPU, at most 8;
 * 0 on a single CPU. Each costs ~30-90 ms of CPU to start (a V8 isolate and Node's bootstrap), measured here.
 */
export function defaultWorkerCount(): number {
  return Math.max(0, Math.min(8, availableParallelism() - 1));
}

/** Keeps the process alive until close(): always close it (try/finally). */
export class HashPool {
  readonly size: number;
  readonly #slots: Slot[];
  #nextId = 0;
  #closed = false;
  #online = 0;
  readonly #started: Promise<void>;

  /** Starts `size` workers at once; they boot in the background while the caller opens files. */
  constructor(size = Math.max(1, defaultWorkerCount())) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`HashPool: ${size} workers`);
    this.size = size;
    this.#slots = Array.from({ length: size }, () => this.#spawn());
    this.#started = Promise.all(this.#slots.map((slot) => new Promise<void>((resolve, reject) => {
      slot.worker.once('online', () => resolve());
      slot.worker.once('error', reject);
    }))).then(() => undefined);
    this.#started.catch(() => undefined);
  }

  /** Whether every worker has started running: until then, a caller with nothing else to do may as well work inline. */
  get ready(): boolean {
    return this.#online === this.size;
  }

  /** Tasks posted and not answered yet, over all workers. */
  get inFlight(): number {
    let count = 0;
    for (const slot of this.#slots) count += slot.pending.size;
    return count;
  }

  /** Resolves when every worker has started (tests use it to be sure the workers, not the caller, do the work). */
  started(): Promise<void> {
    return this.#started;
  }

  /** Runs a task on the least busy worker. task.buffer and task.data's buffer are transferred (unusable here until returned). */
  run(task: ChunkTask): Promise<ChunkResult> {
    if (this.#closed) return Promise.reject(new Error('HashPool: closed'));
    const slot = this.#slots.reduce((best, candidate) => (candidate.pending.size < best.pending.size ? candidate : best));
    if (slot.failed !== undefined) return Promise.reject(slot.failed);
    const id = this.#nextId++;
    return new Promise<ChunkResult>((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      const request: WorkerRequest = { id, task };
      const transfer: ArrayBuffer[] = task.buffer !== undefined ? [task.buffer]
        : task.data !== undefined && !(task.data.buffer instanceof SharedArrayBuffer) ? [task.data.buffer as ArrayBuffer] : [];
      slot.worker.postMessage(request, transfer);
    });
  }

  /** Stops every worker (tasks still running are rejected). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(this.#slots.map((slot) => slot.worker.terminate()));
  }

  #spawn(): Slot {
    const workerData: WorkerData = { shim: shimPathForThreads(), mmap: syscallNumber('mmap') };
    const worker = new Worker(WORKER_SOURCE, { eval: true, name: 'sealroot-hash', stdout: false, stderr: false, workerData });
    const slot: Slot = { worker, pending: new Map(), failed: undefined };
    const settle = (id: number): Pending | undefined => {
      const pending = slot.pending.get(id);
      slot.pending.delete(id);
      return pending;
    };
    worker.once('online', () => {
      this.#online += 1;
    });
    worker.on('message', (response: WorkerResponse) => {
      const pending = settle(response.id);
      if (pending === undefined) return;
      if (response.error !== undefined) {
        pending.reject(new ChunkError(response.error.message, response.error.code, response.error.syscall));
      } else {
        pending.resolve(response.result!);
      }
    });
    const failAll = (error: Error) => {
      slot.failed ??= error;
      for (const id of [...slot.pending.keys()]) settle(id)!.reject(error);
    };
    worker.on('error', (error) => failAll(error instanceof Error ? error : new Error(String(error))));
    worker.on('exit', (code) => failAll(new Error(`hashing worker exited (${code})`)));
    return slot;
  }
}
