// The boot's opens of what the plan names on the physical root: each resolved inside it (src/sys/confined-root.ts),
// checked on the fd, and handed on as /proc/self/fd/N so that the loader and overlayfs get exactly that file.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { StepError } from '../errors.ts';
import { fdPath, fileKind, UntrustedPathError, type ConfinedRoot } from '../sys/confined-root.ts';
import { closeFd } from '../sys/io.ts';
import type { Logger } from '../log.ts';

export interface OpenedImage {
  /** Its size by fstat (0 when it could not be opened: the copy step reports why). */
  readonly size: number;
  /** /proc/self/fd/N when it was opened and is a regular file. */
  readonly fdPath: string | undefined;
  /** /proc/self/fd/N of the checked file; throws the refusal (StepError 'verify-image') when there is none. */
  path(): string;
  close(): void;
}

/**
 * Opens the image file O_PATH inside the physical root (symlinks followed inside it: composefs-rs images may link
 * into the objects) and requires a regular file. The refusal is kept for the copy step, which runs after the TPM
 * read and the cap, so that a broken image is reported where the image is verified.
 */
export function openImage(physical: ConfinedRoot, image: string): OpenedImage {
  let fd: number | undefined;
  let refusal: StepError | undefined;
  let size = 0;
  try {
    fd = physical.openPath(image);
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) refusal = new StepError('verify-image', `the image is ${fileKind(stat)}, not a regular file`, { path: image });
    else size = stat.size;
  } catch (error) {
    if (!(error instanceof UntrustedPathError)) throw error;
    refusal = new StepError('verify-image', `the image ${error.reason}`, { path: error.path, cause: error.cause });
  }
  return heldImage(image, fd, refusal, size);
}

/**
 * The image as opened (`fd`, undefined when it could not be), or the refusal kept for the copy step; `name` names
 * it once closed.
 */
export function heldImage(name: string, fd: number | undefined, refusal: StepError | undefined, size: number): OpenedImage {
  return {
    size,
    fdPath: refusal === undefined && fd !== undefined ? fdPath(fd) : undefined,
    path() {
      if (refusal !== undefined || fd === undefined) throw refusal ?? new StepError('verify-image', 'the image is closed', { path: name });
      return fdPath(fd);
    },
    close() {
      if (fd !== undefined) closeFd(fd);
      fd = undefined;
    },
  };
}

/** An objects directory of the plan, opened O_PATH inside the physical root; a refusal names it. */
export function openObjectsDir(physical: ConfinedRoot, dir: string): number {
  try {
    return physical.openPath(dir, { directory: true });
  } catch (error) {
    if (error instanceof UntrustedPathError) throw new StepError('mount-composefs', `objects directory ${error.reason}`, { path: error.path, cause: error.cause });
    throw error;
  }
}

/** The same error naming the path on the disk instead of the /proc/self/fd/N the step was given. */
export function relabel(error: StepError, labels: ReadonlyMap<string, string>): StepError {
  const label = error.path === undefined ? undefined : labels.get(error.path);
  if (label === undefined) return error;
  const relabelled = new StepError(error.step, error.reason, { path: label, ...(error.cause === undefined ? {} : { cause: error.cause }) });
  return relabelled;
}

const FD_PREFIX = '/proc/self/fd/';

/** Pure: every /proc/self/fd/N (N: one or more digits) in `message` that `labels` names, replaced by its label. */
export function replaceFdPaths(message: string, labels: ReadonlyMap<string, string>): string {
  let out = '';
  let from = 0;
  for (let at = message.indexOf(FD_PREFIX); at >= 0; at = message.indexOf(FD_PREFIX, at)) {
    let end = at + FD_PREFIX.length;
    while (end < message.length && message.charCodeAt(end) >= 0x30 && message.charCodeAt(end) <= 0x39) end++;
    if (end === at + FD_PREFIX.length) {
      at = end;
      continue;
    }
    const fd = message.slice(at, end);
    out += message.slice(from, at) + (labels.get(fd) ?? fd);
    from = end;
    at = end;
  }
  return out + message.slice(from);
}

/** A logger that names the disk's paths where a message says /proc/self/fd/N (the loader and the mount log those). */
export function withPathLabels(log: Logger, labels: ReadonlyMap<string, string>): Logger {
  const label = (message: string) => (labels.size === 0 || !message.includes(FD_PREFIX) ? message : replaceFdPaths(message, labels));
  return {
    info: (message) => log.info(label(message)),
    notice: (message) => log.notice(label(message)),
    warn: (message) => log.warn(label(message)),
    error: (message) => log.error(label(message)),
  };
}

/** Removes `dir` and its parents up to `top` (inclusive), each only when empty (rmdir: never a mount's contents). */
export function removeUpTo(dir: string, top: string): void {
  const rel = path.relative(top, dir);
  if (rel.startsWith('..') || path.isAbsolute(rel)) throw new Error(`${top} is not above ${dir}`);
  for (let current = dir; ; current = path.dirname(current)) {
    try {
      fs.rmdirSync(current);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    if (current === top || current === path.dirname(current)) break;
  }
}

