// A directory whose contents are attacker-written (the physical root), opened once; every path under it is then
// resolved by the kernel relative to that fd with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), the way ostree
// resolves paths against its sysroot fd: `..` stops at the root, absolute symlinks start again at the root, so no
// symlink on the disk can name a file outside it (a lexical join, or realpath(3), would follow it out). Callers
// keep the O_PATH fd they get and check the type on it (fstat), so nothing re-resolves the path after the check.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SysError } from '../errors.ts';
import { closeFd } from './io.ts';
import { O_DIRECTORY, O_NOFOLLOW, O_PATH } from './files.ts';
import { openAt2, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_XDEV } from './openat2.ts';

/** A path from the disk that was refused: where, and why (one line), with the errno when a system call said so. */
export class UntrustedPathError extends Error {
  readonly path: string;
  readonly reason: string;
  readonly errno: number | undefined;
  readonly code: string | undefined;

  constructor(file: string, reason: string, cause?: SysError) {
    super(`${file}: ${reason}`, cause === undefined ? undefined : { cause });
    this.name = 'UntrustedPathError';
    this.path = file;
    this.reason = reason;
    this.errno = cause?.errno;
    this.code = cause?.code;
  }
}

export interface ConfinedOpenOptions {
  /** Require a directory (O_DIRECTORY). */
  directory?: boolean;
  /** Follow a symlink in the last component (still inside the root). Default true. */
  followLast?: boolean;
  /**
   * Allow crossing a mount point below the root (a /var partition mounted inside it, say). Default false:
   * RESOLVE_NO_XDEV, what the image, the objects and the state files live on is the root's own filesystem.
   */
  crossMounts?: boolean;
}

/** What a stat says the file is, for messages: "a FIFO", "a character device", ... */
export function fileKind(stat: fs.Stats): string {
  if (stat.isFile()) return 'a regular file';
  if (stat.isDirectory()) return 'a directory';
  if (stat.isSymbolicLink()) return 'a symbolic link';
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isSocket()) return 'a socket';
  return 'an unknown file type';
}

function reasonFor(error: SysError, options: ConfinedOpenOptions): string {
  switch (error.code) {
    case 'ENOENT': return 'does not exist (resolved inside the physical root)';
    case 'ENOTDIR': return options.directory === true ? 'is not a directory (or a component of it is not)' : 'a component of the path is not a directory';
    case 'ELOOP': return options.followLast === false ? 'is a symbolic link (refused here)' : 'too many symbolic links, or a /proc magic link';
    case 'EXDEV': return 'crosses a mount point inside the physical root (refused)';
    case 'ENOSYS': return 'openat2(2) is not available: confining paths to the physical root needs Linux >= 5.6';
    default: return `cannot open (${error.code})`;
  }
}

/** Every ConfinedRoot open now, so that a reader given a plain path under one of them resolves it confined. */
const registered = new Set<ConfinedRoot>();

export class ConfinedRoot {
  readonly path: string;
  readonly fd: number;
  #closed = false;

  private constructor(root: string, fd: number) {
    this.path = root;
    this.fd = fd;
  }

  /** Opens `root` (a trusted path: the configured sysroot) as the confinement root and registers it. */
  static open(root: string): ConfinedRoot {
    const absolute = path.resolve(root);
    let fd: number;
    try {
      fd = openAt2(-100 /* AT_FDCWD */, absolute, O_PATH | O_DIRECTORY, 0);
    } catch (error) {
      if (error instanceof SysError) throw new UntrustedPathError(absolute, reasonFor(error, { directory: true }), error);
      throw error;
    }
    const confined = new ConfinedRoot(absolute, fd);
    registered.add(confined);
    return confined;
  }

  /** The registered root that `file` (absolute) lies under, if any (the innermost). */
  static containing(file: string): ConfinedRoot | undefined {
    let found: ConfinedRoot | undefined;
    for (const root of registered) {
      const rel = path.relative(root.path, file);
      if (!rel.startsWith('..') && !path.isAbsolute(rel) && (found === undefined || root.path.length > found.path.length)) found = root;
    }
    return found;
  }

  /** `file` relative to the root; an absolute path must lie under it (lexically). */
  relative(file: string): string {
    if (!path.isAbsolute(file)) return file === '' ? '.' : file;
    const rel = path.relative(this.path, file);
    if (rel.startsWith('..') || path.isAbsolute(rel)) throw new UntrustedPathError(file, `is not under the physical root ${this.path}`);
    return rel === '' ? '.' : rel;
  }

  /** An O_PATH fd of `file` (absolute under the root, or relative to it), resolved inside the root. */
  openPath(file: string, options: ConfinedOpenOptions = {}): number {
    return this.open(file, O_PATH | (options.directory === true ? O_DIRECTORY : 0), options);
  }

  /** openat2 relative to the root fd with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS [| RESOLVE_NO_XDEV]. */
  open(file: string, flags: number, options: ConfinedOpenOptions = {}): number {
    if (this.#closed) throw new Error(`the confined root ${this.path} is closed`);
    const rel = this.relative(file);
    const resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | (options.crossMounts === true ? 0 : RESOLVE_NO_XDEV);
    const allFlags = flags | (options.followLast === false ? O_NOFOLLOW : 0) | (options.directory === true ? O_DIRECTORY : 0);
    for (let attempt = 0; ; attempt++) {
      try {
        return openAt2(this.fd, rel, allFlags, resolve);
      } catch (error) {
        // RESOLVE_IN_ROOT answers EAGAIN when a rename raced the walk of `..` (fs/namei.c): try again, a few times.
        if (error instanceof SysError && error.code === 'EAGAIN' && attempt < 8) continue;
        if (error instanceof SysError) throw new UntrustedPathError(this.display(rel), reasonFor(error, options), error);
        throw error;
      }
    }
  }

  /** Where an fd of this root really is (for messages and plans): /proc/self/fd/N's target; else the lexical path. */
  whereIs(fd: number, fallback: string): string {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      return fallback;
    }
  }

  /**
   * The path `file` resolves to inside the root (what a plan records for people); when it does not exist, the
   * lexical path under the root: whoever uses it resolves it again, confined, and reports what is missing.
   */
  canonical(file: string, options: ConfinedOpenOptions = {}): string {
    const lexical = this.display(this.relative(file));
    let fd: number;
    try {
      fd = this.openPath(file, options);
    } catch (error) {
      if (error instanceof UntrustedPathError && error.code === 'ENOENT') return lexical;
      throw error;
    }
    try {
      return this.whereIs(fd, lexical);
    } finally {
      closeFd(fd);
    }
  }

  display(rel: string): string {
    return path.join(this.path, rel);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    registered.delete(this);
    closeFd(this.fd);
  }
}

/** `/proc/self/fd/N`: hands the kernel (a mount option, a reopen) exactly the file the fd holds, no re-resolution. */
export function fdPath(fd: number): string {
  return `/proc/self/fd/${fd}`;
}
