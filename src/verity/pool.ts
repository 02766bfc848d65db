// A pool of hashing worker threads (worker_threads), so that hashing runs on the other cores while this thread
// and the kernel move bytes. A job (./worker.ts) goes to every worker, which claims ranges of it until none is
// left. The workers are started early (while the TPM answers) because each takes tens of ms to boot.
import type { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import type { RangeJob, WorkerRequest, WorkerResponse } from './worker.ts';
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
  resolve: (hashed: number) => void;
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
 * Workers worth starting besides the calling thread, which hashes too (RangeHashing): one per other CPU, at most 8;
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

  /** Resolves when every worker has started (tests use it to be sure the workers, not the caller, do the work). */
  started(): Promise<void> {
    return this.#started;
  }

  /**
   * Gives the job to every worker: each claims ranges until none is left (see hashRanges). Resolves with the
   * ranges the workers hashed once all have answered; rejects with the first failure, also only once all have.
   */
  async run(job: RangeJob): Promise<number> {
    if (this.#closed) throw new Error('HashPool: closed');
    const parts = this.#slots.map((slot) => {
      if (slot.failed !== undefined) return Promise.reject(slot.failed);
      const id = this.#nextId++;
      return new Promise<number>((resolve, reject) => {
        slot.pending.set(id, { resolve, reject });
        const request: WorkerRequest = { id, job };
        slot.worker.postMessage(request);
      });
    });
    const settled = await Promise.allSettled(parts);
    const failure = settled.find((part) => part.status === 'rejected');
    if (failure !== undefined) throw failure.reason;
    return settled.reduce((sum, part) => sum + (part.status === 'fulfilled' ? part.value : 0), 0);
  }

  /** Stops every worker (tasks still running are rejected). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(this.#slots.map((slot) => slot.worker.terminate()));
  }

  #spawn(): Slot {
    const workerData: WorkerData = { shim: shimPathForThreads(), mmap: syscallNumber('mmap') };
    // Loaded when a pool is made: a boot hashing on libuv's threads (src/verity/ranges.ts) never loads it.
    const { Worker: WorkerThread } = process.getBuiltinModule('node:worker_threads');
    const worker = new WorkerThread(WORKER_SOURCE, { eval: true, name: 'sealroot-hash', stdout: false, stderr: false, workerData });
    const slot: Slot = { worker, pending: new Map(), failed: undefined };
    const settle = (id: number): Pending | undefined => {
      const pending = slot.pending.get(id);
      slot.pending.delete(id);
      return pending;
    };
    worker.on('message', (response: WorkerResponse) => {
      const pending = settle(response.id);
      if (pending === undefined) return;
      if (response.error !== undefined) {
        pending.reject(new ChunkError(response.error.message, response.error.code, response.error.syscall));
      } else {
        pending.resolve(response.hashed ?? 0);
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
