// In an initramfs run as PID 1 nothing is mounted yet: /proc, /sys and /dev (devtmpfs, for the loop devices)
// must be there before anything reads /proc/cmdline or opens /dev/loop-control. dracut and systemd mount them
// before us; then this does nothing.
import * as fs from 'node:fs';
import type { Logger } from '../log.ts';
import { mount, MS_NODEV, MS_NOEXEC, MS_NOSUID } from '../sys/mountapi.ts';

const KERNEL_FILESYSTEMS = [
  { target: '/proc', fsType: 'proc', probe: '/proc/self/mountinfo', flags: MS_NOSUID | MS_NODEV | MS_NOEXEC, data: null },
  { target: '/sys', fsType: 'sysfs', probe: '/sys/kernel', flags: MS_NOSUID | MS_NODEV | MS_NOEXEC, data: null },
  { target: '/dev', fsType: 'devtmpfs', probe: '/dev/null', flags: MS_NOSUID, data: 'mode=0755' },
] as const;

/** Mounts each of /proc, /sys, /dev that is missing; returns the ones it mounted. */
export function mountKernelFilesystems(log?: Logger): string[] {
  const mounted: string[] = [];
  for (const fsys of KERNEL_FILESYSTEMS) {
    if (fs.existsSync(fsys.probe)) continue;
    fs.mkdirSync(fsys.target, { recursive: true, mode: 0o755 });
    mount(fsys.fsType, fsys.target, fsys.fsType, fsys.flags, fsys.data);
    mounted.push(fsys.target);
  }
  if (mounted.length > 0) log?.info(`mounted ${mounted.join(', ')}`);
  return mounted;
}
