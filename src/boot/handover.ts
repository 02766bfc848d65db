// Handing over when sealroot is PID 1 (no dracut/systemd to switch root for it), as util-linux switch_root does:
// move /dev, /proc, /sys and /run into the new root, make it /, chroot, free the initramfs, exec the real init. On failure: an
// emergency shell if the initramfs has one, else power off (PID 1 must never exit: the kernel would panic).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from '../log.ts';
import { oneLine } from '../errors.ts';
import { chdir, chroot } from '../sys/files.ts';
import { mount, MS_MOVE } from '../sys/mountapi.ts';
import { execve, keepStdioAcrossExec, LINUX_REBOOT_CMD_POWER_OFF, rebootSystem } from '../sys/process.ts';
import { isDisposableInitramfs, removeTreeOnDevice } from './free-initramfs.ts';
import { readMountinfo } from './mountinfo.ts';

export const EMERGENCY_SHELLS = ['/bin/sh', '/usr/bin/sh', '/bin/busybox'];

/** `init=` or /sbin/init; the init must exist in the new root (checked before anything is moved). */
export function chooseInit(newRoot: string, initKarg: string | undefined): string {
  const init = initKarg ?? '/sbin/init';
  if (!init.startsWith('/')) throw new Error(`init=${init} is not an absolute path`);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(path.join(newRoot, init)); // follows symlinks, as resolved inside the new root after chroot
  } catch (error) {
    throw new Error(`init ${init} not found in the new root: ${(error as NodeJS.ErrnoException).code ?? error}`);
  }
  if (!stat.isFile() || (stat.mode & 0o111) === 0) throw new Error(`init ${init} in the new root is not an executable file`);
  return init;
}

export function switchRoot(newRoot: string, init: string, initArgs: readonly string[], log: Logger): never {
  // Read once, before /proc moves away.
  const mountPoints = new Set(readMountinfo().map((entry) => entry.mountPoint));
  for (const dir of ['/dev', '/proc', '/sys', '/run']) {
    const target = path.join(newRoot, dir);
    if (!mountPoints.has(dir)) continue;
    if (!fs.existsSync(target)) {
      log.warn(`the new root has no ${dir}: ${dir} stays in the initramfs`);
      continue;
    }
    mount(dir, target, null, MS_MOVE, null);
  }
  const freeOldRoot = isDisposableInitramfs();
  const oldRoot = fs.openSync('/', 'r');
  const oldDev = fs.fstatSync(oldRoot, { bigint: true }).dev;
  chdir(newRoot);
  mount(newRoot, '/', null, MS_MOVE, null);
  chroot('.');
  chdir('/');
  if (freeOldRoot) {
    // The old root is out of reach by path now; /proc (moved into the new root) still leads to it through the fd.
    try {
      const removed = removeTreeOnDevice(`/proc/self/fd/${oldRoot}`, oldDev);
      log.info(`freed the initramfs: ${removed} entries removed`);
    } catch (error) {
      log.warn(`could not free all of the initramfs: ${oneLine(error)}`);
    }
  }
  fs.closeSync(oldRoot);
  log.notice(`switching root: exec ${init}`);
  keepStdioAcrossExec();
  const env = Object.entries(process.env).filter(([key]) => !key.startsWith('SEALROOT_')).map(([key, value]) => `${key}=${value}`);
  return execve(init, [init, ...initArgs], env);
}

/** PID 1 after a failure: exec the first emergency shell present, else power off. Never returns. */
export function emergency(log: Logger): never {
  for (const shell of EMERGENCY_SHELLS) {
    if (!fs.existsSync(shell)) continue;
    log.error(`starting the emergency shell ${shell}`);
    try {
      keepStdioAcrossExec();
      const argv = shell.endsWith('busybox') ? [shell, 'sh'] : [shell];
      execve(shell, argv, ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=linux', 'HOME=/']);
    } catch (error) {
      log.error(`cannot exec ${shell}: ${oneLine(error)}`);
    }
  }
  log.error('no emergency shell in the initramfs: powering off');
  return rebootSystem(LINUX_REBOOT_CMD_POWER_OFF);
}
