// Extended attributes and special files on paths that must not be followed (lgetxattr(2), llistxattr(2),
// lsetxattr(2), mknodat(2), utimensat(2)), and syncfs(2). Paths are byte strings (Buffers) so any name works.
import { SysError } from '../errors.ts';
import { syscall } from './native.ts';

const ERANGE = 34;
const AT_SYMLINK_NOFOLLOW = 0x100;

/** A NUL-terminated copy of a path given as bytes or text. */
export function cPath(path: string | Buffer): Buffer {
  const bytes = typeof path === 'string' ? Buffer.from(path) : path;
  return Buffer.concat([bytes, Buffer.alloc(1)]);
}

const label = (path: string | Buffer): string => (typeof path === 'string' ? path : path.toString('utf8'));

/** Retries a size-probe-then-read call while the attribute grows between the two calls (ERANGE). */
function readSized(call: (buf: Buffer | null, size: number) => number): Buffer {
  for (;;) {
    const size = call(null, 0);
    if (size === 0) return Buffer.alloc(0);
    const buf = Buffer.alloc(size);
    try {
      return buf.subarray(0, call(buf, size));
    } catch (error) {
      if (!(error instanceof SysError && error.errno === ERANGE)) throw error;
    }
  }
}

/** The names of a file's xattrs (not following a final symlink), as byte strings. */
export function listXattrs(path: string | Buffer): Buffer[] {
  const p = cPath(path);
  const list = readSized((buf, size) => syscall('llistxattr', [p, buf, size], label(path)));
  const names: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < list.length; i++) {
    if (list[i] !== 0) continue;
    if (i > start) names.push(Buffer.from(list.subarray(start, i)));
    start = i + 1;
  }
  return names;
}

export function getXattr(path: string | Buffer, name: Buffer): Buffer {
  const p = cPath(path);
  const n = cPath(name);
  return Buffer.from(readSized((buf, size) => syscall('lgetxattr', [p, n, buf, size], label(path))));
}

export function setXattr(path: string | Buffer, name: Buffer, value: Buffer): void {
  syscall('lsetxattr', [cPath(path), cPath(name), value.length === 0 ? Buffer.alloc(1) : value, value.length, 0], label(path));
}

/** mknodat(AT_FDCWD, ...): device nodes, fifos and sockets (S_IFSOCK works here, unlike mknod(1)). */
export function mknod(path: string | Buffer, mode: number, dev: number): void {
  syscall('mknodat', [-100, cPath(path), mode, dev], label(path));
}

/** Sets atime and mtime with nanoseconds, without following a final symlink. */
export function setTimes(path: string | Buffer, seconds: bigint, nanoseconds: number): void {
  const times = Buffer.alloc(32);
  for (const at of [0, 16]) {
    times.writeBigInt64LE(seconds, at);
    times.writeBigInt64LE(BigInt(nanoseconds), at + 8);
  }
  syscall('utimensat', [-100, cPath(path), times, AT_SYMLINK_NOFOLLOW], label(path));
}

/** syncfs(2): flushes the filesystem holding the open file `fd`. */
export function syncFilesystem(fd: number, path?: string): void {
  syscall('syncfs', [fd], path);
}
