// The physical root: dracut and systemd mount it at /sysroot before us (sysroot.mount). When sealroot runs as
// PID 1 from a minimal initramfs it mounts it itself from the `root=` karg, read-only unless `rw` is given,
// with `rootfstype=` (or ext4, xfs, btrfs in turn) and `rootflags=`, as the kernel would.
import * as fs from 'node:fs';
import type { Logger } from '../log.ts';
import { kargPresent, kargValue, type Cmdline } from '../config/cmdline.ts';
import { SysError } from '../errors.ts';
import { mount, MS_RDONLY } from '../sys/mountapi.ts';

const PROBED_TYPES = ['ext4', 'xfs', 'btrfs'];

/** Mounts `root=` at `sysroot` unless something is mounted there already; returns whether it mounted. */
export function mountPhysicalRoot(sysroot: string, cmdline: Cmdline, alreadyMounted: boolean, log?: Logger): boolean {
  if (alreadyMounted) return false;
  const device = kargValue(cmdline, 'root');
  if (device === undefined) return false;
  if (!device.startsWith('/dev/')) throw new Error(`root=${device}: only /dev/ paths are supported when sealroot mounts the physical root itself`);
  const fsTypes = kargValue(cmdline, 'rootfstype')?.split(',') ?? PROBED_TYPES;
  const flags = kargPresent(cmdline, 'rw') ? 0 : MS_RDONLY;
  const data = kargValue(cmdline, 'rootflags') ?? null;
  fs.mkdirSync(sysroot, { recursive: true });
  const failures: string[] = [];
  for (const fsType of fsTypes) {
    try {
      mount(device, sysroot, fsType, flags, data);
      log?.info(`physical root ${device} (${fsType}, ${flags === 0 ? 'rw' : 'ro'}) mounted at ${sysroot}`);
      return true;
    } catch (error) {
      if (!(error instanceof SysError)) throw error;
      failures.push(`${fsType}: ${error.code}`);
    }
  }
  throw new Error(`cannot mount root=${device} at ${sysroot} (${failures.join(', ')})`);
}
