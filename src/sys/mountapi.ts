// The new mount API (fsopen(2), fsconfig(2), fsmount(2), move_mount(2), open_tree(2), mount_setattr(2); Linux >= 5.2,
// mount_setattr >= 5.12) and the classic mount(2)/umount2(2).
import { syscall } from './native.ts';
import { AT_EMPTY_PATH, AT_FDCWD } from './files.ts';

export const FSOPEN_CLOEXEC = 0x1;
export const FSMOUNT_CLOEXEC = 0x1;

export const FSCONFIG_SET_FLAG = 0;
export const FSCONFIG_SET_STRING = 1;
export const FSCONFIG_SET_PATH = 3;
export const FSCONFIG_SET_FD = 5;
export const FSCONFIG_CMD_CREATE = 6;

export const MOUNT_ATTR_RDONLY = 0x1;
export const MOUNT_ATTR_NOSUID = 0x2;
export const MOUNT_ATTR_NODEV = 0x4;
export const MOUNT_ATTR_NOEXEC = 0x8;

export const MOVE_MOUNT_F_EMPTY_PATH = 0x4;
export const MOVE_MOUNT_T_EMPTY_PATH = 0x40;

export const OPEN_TREE_CLONE = 0x1;
export const OPEN_TREE_CLOEXEC = 0o2000000;

export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
export const MS_REMOUNT = 0x20;
export const MS_BIND = 0x1000;
export const MS_MOVE = 0x2000;
export const MS_REC = 0x4000;
export const MS_PRIVATE = 0x40000;

export const MNT_DETACH = 0x2;

export function fsopen(fsType: string): number {
  return syscall('fsopen', [fsType, FSOPEN_CLOEXEC], fsType);
}

export function fsconfigSetFlag(fsFd: number, key: string): void {
  syscall('fsconfig', [fsFd, FSCONFIG_SET_FLAG, key, null, 0], key);
}

export function fsconfigSetString(fsFd: number, key: string, value: string): void {
  syscall('fsconfig', [fsFd, FSCONFIG_SET_STRING, key, value, 0], `${key}=${value}`);
}

export function fsconfigSetFd(fsFd: number, key: string, fd: number): void {
  syscall('fsconfig', [fsFd, FSCONFIG_SET_FD, key, null, fd], `${key}=fd:${fd}`);
}

export function fsconfigCreate(fsFd: number, label: string): void {
  syscall('fsconfig', [fsFd, FSCONFIG_CMD_CREATE, null, null, 0], label);
}

/** Creates a detached mount from a configured filesystem context; returns its fd. */
export function fsmount(fsFd: number, attributes: number, label: string): number {
  return syscall('fsmount', [fsFd, FSMOUNT_CLOEXEC, attributes], label);
}

/** Attaches a detached mount (fd) at `target`. */
export function moveMountTo(mountFd: number, target: string): void {
  syscall('move_mount', [mountFd, '', AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH], target);
}

/** move_mount(2) onto the directory `targetFd` holds (an O_PATH fd): no path is walked at the target. */
export function moveMountToFd(mountFd: number, targetFd: number, label: string): void {
  syscall('move_mount', [mountFd, '', targetFd, '', MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH], label);
}

/** A detached copy of the mount at `path` (OPEN_TREE_CLONE), optionally recursive. */
export function openTreeClone(path: string, recursive: boolean): number {
  const AT_RECURSIVE = 0x8000;
  return syscall('open_tree', [AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0)], path);
}

/**
 * A detached copy of the mount tree at the directory `fd` holds (open_tree(fd, "", AT_EMPTY_PATH | OPEN_TREE_CLONE)):
 * a bind of exactly what was resolved and checked, with no path walked again.
 */
export function openTreeCloneFd(fd: number, recursive: boolean, label: string): number {
  const AT_RECURSIVE = 0x8000;
  return syscall('open_tree', [fd, '', AT_EMPTY_PATH | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0)], label);
}

/** Sets and clears MOUNT_ATTR_* on the mount referred to by `mountFd` (struct mount_attr, 32 bytes). */
export function mountSetattrFd(mountFd: number, set: number, clear: number, label: string): void {
  const attr = Buffer.alloc(32);
  attr.writeBigUInt64LE(BigInt(set), 0);
  attr.writeBigUInt64LE(BigInt(clear), 8);
  syscall('mount_setattr', [mountFd, '', AT_EMPTY_PATH, attr, attr.length], label);
}

export function mount(source: string | null, target: string, fsType: string | null, flags: number, data: string | null): void {
  syscall('mount', [source, target, fsType, flags, data], target);
}

export function umount2(target: string, flags = 0): void {
  syscall('umount2', [target, flags], target);
}

/** move_mount(2) from one attached path to another (the MS_MOVE of the new API). */
export function moveMountPath(from: string, to: string): void {
  syscall('move_mount', [AT_FDCWD, from, AT_FDCWD, to, 0], `${from} -> ${to}`);
}

/** mount_setattr(2) on a mount fd, optionally on every mount below it too (AT_RECURSIVE). */
export function mountSetattrTree(mountFd: number, set: number, clear: number, recursive: boolean, label: string): void {
  const AT_RECURSIVE = 0x8000;
  const attr = Buffer.alloc(32);
  attr.writeBigUInt64LE(BigInt(set), 0);
  attr.writeBigUInt64LE(BigInt(clear), 8);
  syscall('mount_setattr', [mountFd, '', AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), attr, attr.length], label);
}
