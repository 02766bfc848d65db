// Path-based calls relative to a directory fd (openat(2), mkdirat(2), symlinkat(2), unlinkat(2)), chdir/chroot.
import * as fs from 'node:fs';
import { SysError } from '../errors.ts';
import { errnoName } from './errno.ts';
import { closeFd } from './io.ts';
import { syscall, syscallOrErrno, syscallRetrying } from './native.ts';

export const AT_FDCWD = -100;
export const AT_SYMLINK_NOFOLLOW = 0x100;
export const AT_REMOVEDIR = 0x200;
export const AT_EMPTY_PATH = 0x1000;
export const AT_RECURSIVE = 0x8000;

export const O_RDONLY = fs.constants.O_RDONLY;
export const O_RDWR = fs.constants.O_RDWR;
export const O_CLOEXEC = 0o2000000; // the same on x86_64 and aarch64
export const O_DIRECTORY = fs.constants.O_DIRECTORY;
export const O_NOFOLLOW = fs.constants.O_NOFOLLOW;
export const O_PATH = 0o10000000;

export function openAt(dirFd: number, path: string, flags: number, mode = 0): number {
  return syscallRetrying('openat', [dirFd, path, flags | O_CLOEXEC, mode], path);
}

export function mkdirAt(dirFd: number, path: string, mode = 0o755): void {
  syscall('mkdirat', [dirFd, path, mode], path);
}

/** mkdirat(2) where the directory may exist already: 'made' or 'exists' (anything else there is the opener's to refuse). */
export function makeDirAt(dirFd: number, path: string, mode = 0o755): 'made' | 'exists' {
  const result = syscallOrErrno('mkdirat', [dirFd, path, mode]);
  if (result < 0 && errnoName(-result) === 'EEXIST') return 'exists';
  if (result < 0) throw new SysError('mkdirat', -result, path);
  return 'made';
}

/** Whether `path` (relative to dirFd) does not exist: openat(2) O_PATH answers ENOENT (any other failure: false). */
export function isAbsentAt(dirFd: number, path: string, flags: number): boolean {
  const result = syscallOrErrno('openat', [dirFd, path, flags | O_PATH | O_CLOEXEC, 0]);
  if (result >= 0) closeFd(result);
  return result < 0 && errnoName(-result) === 'ENOENT';
}

export function symlinkAt(target: string, dirFd: number, path: string): void {
  syscall('symlinkat', [target, dirFd, path], path);
}

export function unlinkAt(dirFd: number, path: string, flags = 0): void {
  syscall('unlinkat', [dirFd, path, flags], path);
}

export function chdir(path: string): void {
  syscall('chdir', [path], path);
}

export function chroot(path: string): void {
  syscall('chroot', [path], path);
}
