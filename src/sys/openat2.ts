// openat2(2) (Linux >= 5.6): path resolution the caller constrains (include/uapi/linux/openat2.h).
import { syscallRetrying } from './native.ts';
import { O_CLOEXEC } from './files.ts';

/** Refuse to cross a mount point (bind mounts included) while resolving. */
export const RESOLVE_NO_XDEV = 0x01;
/** Refuse procfs magic links (/proc/self/fd/N, /proc/N/root, ...) anywhere in the path. */
export const RESOLVE_NO_MAGICLINKS = 0x02;
/** Refuse every symbolic link. */
export const RESOLVE_NO_SYMLINKS = 0x04;
/** Refuse to resolve above the directory fd (`..` past it, absolute paths or symlinks: EXDEV). */
export const RESOLVE_BENEATH = 0x08;
/** Resolve as if the directory fd were the root: `..` stops there, absolute paths and symlinks start there. */
export const RESOLVE_IN_ROOT = 0x10;

/** struct open_how: u64 flags, u64 mode, u64 resolve (24 bytes, the first published size). */
export function openAt2(dirFd: number, path: string, flags: number, resolve: number, mode = 0): number {
  const how = Buffer.alloc(24);
  how.writeBigUInt64LE(BigInt(flags | O_CLOEXEC), 0);
  how.writeBigUInt64LE(BigInt(mode), 8);
  how.writeBigUInt64LE(BigInt(resolve), 16);
  return syscallRetrying('openat2', [dirFd, path, how, how.length], path);
}
