// Builds a detached mount with the new mount API: fsopen, fsconfig each parameter, create, fsmount.
// Every failure names the filesystem and the parameter the kernel refused.
import { SysError } from '../errors.ts';
import { closeFd } from '../sys/io.ts';
import { syscall } from '../sys/native.ts';
import { fsconfigCreate, fsconfigSetFlag, fsconfigSetString, fsmount, fsopen } from '../sys/mountapi.ts';
import type { FsParam } from './overlay-options.ts';

export class FsParamError extends Error {
  readonly fsType: string;
  readonly param: string;
  readonly sysError: SysError;

  constructor(fsType: string, param: string, sysError: SysError, kernelMessages: readonly string[] = []) {
    const said = kernelMessages.length === 0 ? '' : ` (kernel: ${kernelMessages.join('; ')})`;
    super(`${fsType}: the kernel refused ${param}: ${sysError.code}${said}`, { cause: sysError });
    this.name = 'FsParamError';
    this.fsType = fsType;
    this.param = param;
    this.sysError = sysError;
  }
}

/** A detached mount (its fd, CLOEXEC) of a new `fsType` superblock configured with `params`. */
export function createDetachedMount(fsType: string, params: readonly FsParam[], attributes: number): number {
  const fsFd = fsopen(fsType);
  try {
    for (const param of params) {
      const label = param.kind === 'flag' ? param.key : `${param.key}=${param.value}`;
      try {
        if (param.kind === 'flag') fsconfigSetFlag(fsFd, param.key);
        else fsconfigSetString(fsFd, param.key, param.value);
      } catch (error) {
        if (error instanceof SysError) throw new FsParamError(fsType, label, error, kernelMessages(fsFd));
        throw error;
      }
    }
    try {
      fsconfigCreate(fsFd, fsType);
    } catch (error) {
      if (error instanceof SysError) throw new FsParamError(fsType, 'create', error, kernelMessages(fsFd));
      throw error;
    }
    return fsmount(fsFd, attributes, fsType);
  } finally {
    closeFd(fsFd);
  }
}

/**
 * The messages the filesystem logged on the context (read(2) on the fsopen fd gives one "e ..."/"w ..."/"i ..."
 * line per call until ENODATA; Documentation/filesystems/mount_api.rst).
 */
function kernelMessages(fsFd: number): string[] {
  const messages: string[] = [];
  const buffer = Buffer.alloc(1024);
  for (let i = 0; i < 8; i++) {
    let n: number;
    try {
      n = syscall('read', [fsFd, buffer, buffer.length]);
    } catch {
      break; // ENODATA: no more messages (or no message support): the errno alone is still reported
    }
    if (n <= 0) break;
    messages.push(buffer.subarray(0, n).toString('utf8').trim());
  }
  return messages;
}
