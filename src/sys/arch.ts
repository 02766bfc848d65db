// System call numbers per architecture: arch/x86/entry/syscalls/syscall_64.tbl and
// include/uapi/asm-generic/unistd.h (aarch64). Only the calls sealroot makes.
export type SyscallName =
  | 'read' | 'write' | 'close' | 'pread64' | 'pwrite64' | 'ioctl' | 'fcntl' | 'openat' | 'mkdirat' | 'symlinkat'
  | 'unlinkat' | 'fstatfs' | 'chdir' | 'fchdir' | 'chroot' | 'mount' | 'umount2' | 'pivot_root' | 'execve' | 'reboot'
  | 'memfd_create' | 'open_tree' | 'move_mount' | 'fsopen' | 'fsconfig' | 'fsmount' | 'fspick' | 'mount_setattr'
  | 'getpid' | 'sync' | 'lgetxattr' | 'llistxattr' | 'lsetxattr' | 'mknodat' | 'utimensat' | 'syncfs'
  | 'mmap' | 'munmap' | 'sendfile' | 'ftruncate' | 'openat2' | 'exit_group' | 'getrandom'
  | 'sched_setscheduler' | 'sched_getscheduler' | 'sched_getparam';

const X86_64: Readonly<Record<SyscallName, number>> = {
  read: 0, write: 1, close: 3, pread64: 17, pwrite64: 18, ioctl: 16, fcntl: 72, openat: 257, mkdirat: 258,
  symlinkat: 266, unlinkat: 263, fstatfs: 138, chdir: 80, fchdir: 81, chroot: 161, mount: 165, umount2: 166,
  pivot_root: 155, execve: 59, reboot: 169, memfd_create: 319, open_tree: 428, move_mount: 429, fsopen: 430,
  fsconfig: 431, fsmount: 432, fspick: 433, mount_setattr: 442, getpid: 39, sync: 162,
  lgetxattr: 192, llistxattr: 195, lsetxattr: 189, mknodat: 259, utimensat: 280, syncfs: 306,
  mmap: 9, munmap: 11, sendfile: 40, ftruncate: 77, openat2: 437, exit_group: 231, getrandom: 318,
  sched_setscheduler: 144, sched_getscheduler: 145, sched_getparam: 143,
};

const AARCH64: Readonly<Record<SyscallName, number>> = {
  read: 63, write: 64, close: 57, pread64: 67, pwrite64: 68, ioctl: 29, fcntl: 25, openat: 56, mkdirat: 34,
  symlinkat: 36, unlinkat: 35, fstatfs: 44, chdir: 49, fchdir: 50, chroot: 51, mount: 40, umount2: 39,
  pivot_root: 41, execve: 221, reboot: 142, memfd_create: 279, open_tree: 428, move_mount: 429, fsopen: 430,
  fsconfig: 431, fsmount: 432, fspick: 433, mount_setattr: 442, getpid: 172, sync: 81,
  lgetxattr: 9, llistxattr: 12, lsetxattr: 6, mknodat: 33, utimensat: 88, syncfs: 267,
  mmap: 222, munmap: 215, sendfile: 71, ftruncate: 46, openat2: 437, exit_group: 94, getrandom: 278,
  sched_setscheduler: 119, sched_getscheduler: 120, sched_getparam: 121,
};

export const SYSCALL_TABLES: Readonly<Record<string, Readonly<Record<SyscallName, number>>>> = {
  x64: X86_64,
  arm64: AARCH64,
};

export class UnsupportedArchError extends Error {
  constructor(arch: string) {
    super(`sealroot has no system call table for architecture '${arch}' (supported: ${Object.keys(SYSCALL_TABLES).join(', ')})`);
    this.name = 'UnsupportedArchError';
  }
}

export function syscallTable(arch: string): Readonly<Record<SyscallName, number>> {
  const table = SYSCALL_TABLES[arch];
  if (table === undefined) throw new UnsupportedArchError(arch);
  return table;
}
