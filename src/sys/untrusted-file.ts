// Reading a file someone else may have written (the disk's state, a layout's configuration): the file is opened
// without following a last symlink and without blocking, checked on its fd to be a regular file, and read only
// up to a limit, and never past the size fstat gave plus one byte (which would show that it grows while read).
// Under a registered ConfinedRoot (the physical root during the boot) the path is resolved inside that root.
// A FIFO, a device, a directory, a symlink, a huge (sparse) file or a growing one is refused with a typed error
// naming the path, before a single byte is read from it.
import * as fs from 'node:fs';
import { SysError } from '../errors.ts';
import { ConfinedRoot, fdPath, fileKind, UntrustedPathError } from './confined-root.ts';
import { AT_FDCWD, isAbsentAt, O_NOFOLLOW, O_PATH, O_RDONLY, openAt } from './files.ts';
import { closeFd, readFully } from './io.ts';

export { UntrustedPathError } from './confined-root.ts';

const O_NONBLOCK = fs.constants.O_NONBLOCK;

export interface UntrustedReadOptions {
  /** Refuse a larger file (bytes). */
  maxBytes: number;
  /**
   * Resolve inside this root; default: the registered ConfinedRoot the path lies under, if any (the physical root
   * while `sealroot boot` runs). null: never confine (a trusted file, e.g. the boot configuration in the initramfs).
   */
  under?: ConfinedRoot | null;
  /** Follow a symlink in the last component (inside the root when confined). Default false. */
  followLast?: boolean;
}

/** Why a read was refused; `path` names the file, `reason` says why in words. */
export class UntrustedFileError extends UntrustedPathError {
  readonly kind: 'missing' | 'not-regular' | 'too-large' | 'changed' | 'unreadable';

  constructor(file: string, kind: UntrustedFileError['kind'], reason: string, cause?: SysError) {
    super(file, reason, cause);
    this.name = 'UntrustedFileError';
    this.kind = kind;
  }
}

/** The root `file` is resolved inside: the one given, or the registered one it lies under; none for `under: null`. */
function confinementOf(file: string, options: UntrustedReadOptions): ConfinedRoot | undefined {
  return options.under === null ? undefined : options.under ?? ConfinedRoot.containing(file);
}

function openPathFd(file: string, options: UntrustedReadOptions): number {
  const root = confinementOf(file, options);
  const followLast = options.followLast === true;
  try {
    // Mounts inside the root may be crossed: the state may live on an ESP the initramfs mounted under it. Still
    // resolved inside the root, and the file is type-checked and bounded whatever filesystem it is on.
    if (root !== undefined) return root.open(file, O_PATH, { followLast, crossMounts: true });
    return openAt(AT_FDCWD, file, O_PATH | (followLast ? 0 : O_NOFOLLOW));
  } catch (error) {
    if (error instanceof UntrustedPathError) {
      throw new UntrustedFileError(error.path, error.code === 'ENOENT' ? 'missing' : 'unreadable', error.reason, error.cause as SysError | undefined);
    }
    if (error instanceof SysError) {
      const reason = error.code === 'ENOENT' ? 'does not exist' : error.code === 'ELOOP' ? 'is a symbolic link (refused here)' : `cannot open (${error.code})`;
      throw new UntrustedFileError(file, error.code === 'ENOENT' ? 'missing' : 'unreadable', reason, error);
    }
    throw error;
  }
}

/**
 * Reads a whole regular file of at most `maxBytes` bytes. The O_PATH fd is checked first (opening a device or a
 * FIFO for reading can block or have side effects: a watchdog starts on open); the file is then reopened through
 * /proc/self/fd (the same inode, no path walk) with O_RDONLY | O_NONBLOCK.
 */
export function readUntrustedFile(file: string, options: UntrustedReadOptions): Buffer {
  const pathFd = openPathFd(file, options);
  let fd: number | undefined;
  try {
    const stat = fs.fstatSync(pathFd);
    if (!stat.isFile()) throw new UntrustedFileError(file, 'not-regular', `is ${fileKind(stat)}, not a regular file`);
    if (stat.size > options.maxBytes) throw new UntrustedFileError(file, 'too-large', `is ${stat.size} bytes, over the limit of ${options.maxBytes}`);
    try {
      fd = fs.existsSync(fdPath(pathFd)) ? openAt(AT_FDCWD, fdPath(pathFd), O_RDONLY | O_NONBLOCK) : undefined;
    } catch (error) {
      if (error instanceof SysError) throw new UntrustedFileError(file, 'unreadable', `cannot open (${error.code})`, error);
      throw error;
    }
    if (fd === undefined) {
      // No /proc: open the path again (confined, never following) and require the same inode.
      const root = confinementOf(file, options);
      fd = root !== undefined ? root.open(file, O_RDONLY | O_NONBLOCK, { followLast: options.followLast === true, crossMounts: true })
        : openAt(AT_FDCWD, file, O_RDONLY | O_NONBLOCK | (options.followLast === true ? 0 : O_NOFOLLOW));
    }
    const opened = fs.fstatSync(fd);
    if (opened.dev !== stat.dev || opened.ino !== stat.ino || !opened.isFile()) throw new UntrustedFileError(file, 'changed', 'was replaced while it was opened');
    // One byte more than the size: a file that grows while it is read is noticed, not read without end.
    const buffer = Buffer.alloc(Math.min(stat.size, options.maxBytes) + 1);
    let length: number;
    try {
      length = readFully(fd, buffer, file);
    } catch (error) {
      if (error instanceof SysError) throw new UntrustedFileError(file, 'unreadable', `cannot read (${error.code})`, error);
      throw error;
    }
    if (length > stat.size) throw new UntrustedFileError(file, 'changed', `grew while it was read (beyond ${stat.size} bytes)`);
    if (length < stat.size) throw new UntrustedFileError(file, 'changed', `shrank while it was read (${length} of ${stat.size} bytes)`);
    return buffer.subarray(0, length);
  } finally {
    if (fd !== undefined) closeFd(fd);
    closeFd(pathFd);
  }
}

/** readUntrustedFile as UTF-8 text; bytes that are not UTF-8 are refused (a parser must not see replacement characters). */
export function readUntrustedText(file: string, options: UntrustedReadOptions): string {
  const bytes = readUntrustedFile(file, options);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new UntrustedFileError(file, 'unreadable', 'is not UTF-8 text');
  }
}

/** readUntrustedText, or undefined when the file does not exist. */
export function readUntrustedTextIfExists(file: string, options: UntrustedReadOptions): string | undefined {
  // A file of the initramfs that is usually absent (setup-root-conf.toml, prepare-root.conf) is asked without an
  // exception first (each costs ms of a boot under QEMU TCG); one that exists, and any file under the physical
  // root, is read the usual way (a file removed in between is still "missing" below, any other failure of the
  // probe is reported there).
  if (confinementOf(file, options) === undefined && isAbsentAt(AT_FDCWD, file, options.followLast === true ? 0 : O_NOFOLLOW)) return undefined;
  try {
    return readUntrustedText(file, options);
  } catch (error) {
    if (error instanceof UntrustedFileError && error.kind === 'missing') return undefined;
    throw error;
  }
}
