// Loads the generic syscall shim (native/sys_shim.c) and turns its failures into SysError.
// In the single executable the shim is a SEA asset: it is written to an anonymous file (O_TMPFILE) and
// dlopen()ed through /proc/self/fd, so no writable /tmp is needed; without /proc, a named file that is
// unlinked at once after loading.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as sea from 'node:sea';
import { fileURLToPath } from 'node:url';
import { SysError } from '../errors.ts';
import { offerExitNow } from '../process-exit.ts';
import { SYSCALL_TABLES, syscallTable, type SyscallName } from './arch.ts';
import { errnoName } from './errno.ts';

export type SyscallArg = number | bigint | string | ArrayBufferView | ArrayBuffer | null | undefined;

/** The shim's fs-verity block hashing: the digests of every block of `data` into `out`; returns the block count. */
export interface NativeBlockHashing {
  hashBlocks(data: ArrayBufferView, blockSize: number, algorithm: 'sha256' | 'sha512', paddedSalt: ArrayBufferView, out: ArrayBufferView): number;
  /** The same on a thread of libuv's pool; the arguments are checked (and thrown on) at the call. */
  hashBlocksAsync?(data: ArrayBufferView, blockSize: number, algorithm: 'sha256' | 'sha512', paddedSalt: ArrayBufferView, out: ArrayBufferView): Promise<number>;
  /**
   * On a thread of libuv's pool, until no range is left or control[stop] is set: claims range i =
   * Atomics.add(control, next, 1) (shared with the other such calls), pread(2)s its bytes of `source` (ranges of
   * `rangeSize` over `size` bytes) into the memory at `destination` + its offset (a shared writable mapping of the
   * image's memfd; 0: into a buffer of the thread's own, for a file only hashed), hashes them there into their place
   * in `out` (the whole file's block digests), and sets
   * lengths[i] to the bytes read (fewer at the source's end). Resolves to the ranges this call did; a failed pread
   * sets control[stop] and rejects with its errno. A `destination` must stay mapped, for `size` bytes, until every
   * such call has settled.
   */
  copyHashRangesAsync?(control: Int32Array, next: number, stop: number, lengths: Int32Array, source: number, destination: number,
    size: number, rangeSize: number, blockSize: number, algorithm: 'sha256' | 'sha512', paddedSalt: ArrayBufferView, out: ArrayBufferView): Promise<number>;
}

/** The digests the shim computes (OpenSSL's SHA functions, as the Node binary exports them). */
export type NativeDigestAlgorithm = 'sha1' | 'sha256' | 'sha384' | 'sha512';

/** The shim's digests and constant-time compare: the boot's hashing without node:crypto (src/crypto/primitives.ts). */
export interface NativeCrypto {
  /** The hash of the parts' concatenation. */
  digest(algorithm: NativeDigestAlgorithm, ...data: ArrayBufferView[]): Buffer;
  /** Same bytes (CRYPTO_memcmp); false for different lengths. */
  equalConstantTime(a: ArrayBufferView, b: ArrayBufferView): boolean;
}

interface Shim {
  syscall(nr: number, ...args: SyscallArg[]): number;
  /** Absent from a shim built before it existed. */
  syscallOrErrno?(nr: number, ...args: SyscallArg[]): number;
  addressOf(buffer: ArrayBufferView | ArrayBuffer): bigint;
  mapping(address: number, length: number): ArrayBuffer;
  /** Absent from a shim built before they existed. */
  hashBlocks?: NativeBlockHashing['hashBlocks'];
  hashBlocksAsync?: NativeBlockHashing['hashBlocksAsync'];
  copyHashRangesAsync?: NativeBlockHashing['copyHashRangesAsync'];
  digest?: NativeCrypto['digest'];
  equalConstantTime?: NativeCrypto['equalConstantTime'];
}

interface ShimError extends Error {
  errno: number;
  nr: number;
}

const SHIM_ASSET = 'sys_shim.node';
/** Directories tried, in order, for the anonymous file the embedded shim is loaded from. */
const SHIM_DIRS = ['/run', '/dev/shm', '/tmp'];

let loaded: Shim | undefined;
/** Where the loaded shim can be loaded again by another thread of this process; undefined when nowhere. */
let loadedFrom: string | undefined;
let numbers: Readonly<Record<SyscallName, number>> | undefined;

function isShimError(error: unknown): error is ShimError {
  return error instanceof Error && typeof (error as Partial<ShimError>).errno === 'number';
}

function dlopen(file: string): Shim {
  const module = { exports: {} as Shim };
  process.dlopen(module, file, os.constants.dlopen.RTLD_NOW);
  return module.exports;
}

function loadFromBytes(bytes: Uint8Array): Shim {
  const failures: string[] = [];
  const dirs = [...new Set([...SHIM_DIRS, os.tmpdir()])];
  const O_TMPFILE = 0o20000000 | fs.constants.O_DIRECTORY;
  if (fs.existsSync('/proc/self/fd')) {
    for (const dir of dirs) {
      let fd: number | undefined;
      try {
        fd = fs.openSync(dir, O_TMPFILE | fs.constants.O_RDWR, 0o500);
        fs.writeFileSync(fd, bytes);
        const shim = dlopen(`/proc/self/fd/${fd}`);
        // Kept open (close-on-exec, as libuv opens every fd) for the hashing worker threads to load it too.
        loadedFrom = `/proc/self/fd/${fd}`;
        fd = undefined;
        return shim;
      } catch (error) {
        failures.push(`${dir} (O_TMPFILE): ${error instanceof Error ? error.message : String(error)}`);
      } finally {
        if (fd !== undefined) fs.closeSync(fd);
      }
    }
  }
  for (const dir of dirs) {
    const file = path.join(dir, `.sealroot-shim-${process.pid}-${Date.now()}.node`);
    try {
      fs.writeFileSync(file, bytes, { mode: 0o500, flag: 'wx' });
      return dlopen(file);
    } catch (error) {
      failures.push(`${file}: ${error instanceof Error ? error.message : String(error)}`);
    } finally {
      fs.rmSync(file, { force: true });
    }
  }
  throw new Error(`cannot load the syscall shim: ${failures.join('; ')}`);
}

function shimCandidates(): string[] {
  const override = process.env.SEALROOT_SHIM;
  if (override !== undefined && override !== '') return [override];
  const here = path.dirname(fileURLToPath(import.meta.url));
  // From src/sys/ (tests run the sources) and from dist/ (the bundle run by plain node).
  return [
    path.join(here, '../../native/build/Release/sys_shim.node'),
    path.join(here, '../native/build/Release/sys_shim.node'),
  ];
}

function shimPathOnDisk(): string {
  const candidates = shimCandidates();
  if (candidates.length === 1) return candidates[0]!;
  const found = candidates.find((candidate) => fs.existsSync(candidate));
  if (found === undefined) {
    throw new Error(`the syscall shim is not built (looked for ${candidates.join(', ')}); run: npm run build:native`);
  }
  return found;
}

function shim(): Shim {
  if (loaded === undefined) {
    if (sea.isSea()) {
      loaded = loadFromBytes(new Uint8Array(sea.getRawAsset(SHIM_ASSET)));
    } else {
      const file = shimPathOnDisk();
      loaded = dlopen(file);
      loadedFrom = file;
    }
    offerExitNow(exitNow);
  }
  return loaded;
}

/**
 * Ends the process now with exit_group(2), after the 'exit' listeners have run as process.exit() runs them, but
 * without Node's teardown after them (its threads joined, its heap freed: ~3 ms of a ~107 ms boot, measured).
 * Offered to the CLI (src/process-exit.ts) once the shim is loaded: loading it only for this would cost more than
 * it saves. On an unknown architecture, or if the call returns, process.exit(). The caller makes sure no output
 * waits in a stream.
 */
function exitNow(code: number): never {
  if (loaded !== undefined && process.arch in SYSCALL_TABLES && !writesAtTeardown()) {
    const nr = syscallNumber('exit_group');
    process.exitCode = code;
    process.emit('exit', code);
    loaded.syscall(nr, code);
  }
  return process.exit(code);
}

/** Profiles and coverage are written by Node's teardown: with them asked for, the process ends the usual way. */
function writesAtTeardown(): boolean {
  const options = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' ');
  return process.env.NODE_V8_COVERAGE !== undefined || ['--cpu-prof', '--heap-prof', '--prof'].some((flag) => hasFlag(options, flag));
}

/** `flag` in `options` as a whole word (/--prof\b/): not followed by [A-Za-z0-9_]; `--cpu-prof-dir` holds `--cpu-prof`. */
export function hasFlag(options: string, flag: string): boolean {
  for (let at = options.indexOf(flag); at >= 0; at = options.indexOf(flag, at + 1)) {
    const next = options.charCodeAt(at + flag.length);
    const word = (next >= 0x30 && next <= 0x39) || (next >= 0x41 && next <= 0x5a) || (next >= 0x61 && next <= 0x7a) || next === 0x5f;
    if (!word) return true;
  }
  return false;
}

/** A path another thread of this process can load the shim from (it loads it here first); undefined if none. */
export function shimPathForThreads(): string | undefined {
  shim();
  return loadedFrom;
}

/**
 * The shim, for hashing fs-verity blocks natively (src/verity/blocks.ts): loaded here when there is one (always in
 * the executable); undefined when the sources run without a built shim, which leaves the hashing to node:crypto.
 */
export function blockHashingShim(): NativeBlockHashing | undefined {
  if (!shimAvailable()) return undefined;
  const { hashBlocks, hashBlocksAsync, copyHashRangesAsync } = shim();
  if (hashBlocks === undefined) return undefined;
  return {
    hashBlocks,
    ...(hashBlocksAsync === undefined ? {} : { hashBlocksAsync }),
    ...(copyHashRangesAsync === undefined ? {} : { copyHashRangesAsync }),
  };
}

/** The shim is loaded, or can be: always in the executable; the sources may run without a built one. */
export function shimAvailable(): boolean {
  return loaded !== undefined || sea.isSea() || shimCandidates().some((candidate) => fs.existsSync(candidate));
}

/**
 * The shim's digests and constant-time compare, loading the shim when there is one (always in the executable);
 * undefined when the sources run without a built shim, or with one built before these existed.
 */
export function cryptoShim(): NativeCrypto | undefined {
  if (!shimAvailable()) return undefined;
  const { digest, equalConstantTime } = shim();
  if (digest === undefined || equalConstantTime === undefined) return undefined;
  return { digest, equalConstantTime };
}

/** The number of a system call on this machine's architecture (throws UnsupportedArchError elsewhere). */
export function syscallNumber(name: SyscallName): number {
  numbers ??= syscallTable(process.arch);
  return numbers[name];
}

/**
 * Makes one system call. Fails with SysError(name, errno, path): `path` only labels the error.
 * Strings are passed as NUL-terminated copies, buffers as pointers to their bytes.
 */
export function syscall(name: SyscallName, args: readonly SyscallArg[], path?: string): number {
  const nr = syscallNumber(name);
  try {
    return shim().syscall(nr, ...args);
  } catch (error) {
    if (isShimError(error)) throw new SysError(name, error.errno, path);
    throw error;
  }
}

/**
 * A system call whose failure the caller expects (a file that may be absent, a directory that may exist): its
 * result, or -errno, without an exception (each one costs ms of a boot under QEMU TCG). Retried on EINTR.
 */
export function syscallOrErrno(name: SyscallName, args: readonly SyscallArg[]): number {
  const nr = syscallNumber(name);
  const loaded = shim();
  for (;;) {
    let result: number;
    if (loaded.syscallOrErrno !== undefined) {
      result = loaded.syscallOrErrno(nr, ...args);
    } else {
      try {
        result = loaded.syscall(nr, ...args);
      } catch (error) {
        if (!isShimError(error)) throw error;
        result = -error.errno;
      }
    }
    if (result >= 0 || errnoName(-result) !== 'EINTR') return result;
  }
}

/** Like syscall(), but retries while the call is interrupted by a signal (EINTR). */
export function syscallRetrying(name: SyscallName, args: readonly SyscallArg[], path?: string): number {
  for (;;) {
    try {
      return syscall(name, args, path);
    } catch (error) {
      if (!(error instanceof SysError && error.code === 'EINTR')) throw error;
    }
  }
}

/** Address of a buffer's bytes, for structs that carry pointers; keep the buffer referenced across the call. */
export function addressOf(buffer: ArrayBufferView | ArrayBuffer): bigint {
  return shim().addressOf(buffer);
}

/** The bytes of a mapping made with the mmap syscall, as an ArrayBuffer that munmap()s it when collected. */
export function mappingBuffer(address: number, length: number): ArrayBuffer {
  return shim().mapping(address, length);
}
