// Log lines go to stderr ("sealroot: ..."); in an initramfs the notices, warnings and errors also go to /dev/kmsg
// with a kernel log level, so that a failure is on the console and in the journal even when stderr goes nowhere.
// Not the info lines: the kernel passes at most 10 records per 5 s from one /dev/kmsg writer and drops the rest
// (kernel/printk/printk.c devkmsg_write, DEFAULT_RATELIMIT_BURST), and a boot's info lines would use that up before
// a failure's line, which must never be the one dropped.
import * as fs from 'node:fs';
import { writeStdio } from './stdio.ts';

export const KMSG_ERR = 3;
export const KMSG_WARNING = 4;
export const KMSG_NOTICE = 5;
export const KMSG_INFO = 6;

export interface Logger {
  info(message: string): void;
  notice(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Pure: one /dev/kmsg record (syslog priority prefix, no embedded newlines). */
export function kmsgRecord(level: number, message: string): string {
  return `<${level}>sealroot: ${message.includes('\n') ? message.replace(/\s*\n\s*/g, ' ') : message}\n`;
}

/** Whether this process runs in an initramfs: /etc/initrd-release (systemd, dracut) or PID 1, or asked by env. */
export function inInitramfs(): boolean {
  if (process.env.SEALROOT_KMSG === '1') return true;
  if (process.env.SEALROOT_KMSG === '0') return false;
  return process.pid === 1 || fs.existsSync('/etc/initrd-release');
}

export function createLogger(options: { kmsg: boolean; verbose?: boolean; kmsgPath?: string } = { kmsg: inInitramfs() }): Logger {
  let kmsgFd: number | undefined;
  let kmsgBroken = false;
  const toKmsg = (level: number, message: string): void => {
    if (!options.kmsg || kmsgBroken || level > KMSG_NOTICE) return;
    try {
      kmsgFd ??= fs.openSync(options.kmsgPath ?? '/dev/kmsg', 'w');
      fs.writeSync(kmsgFd, kmsgRecord(level, message));
    } catch (error) {
      kmsgBroken = true;
      writeStdio(2, `sealroot: cannot write to /dev/kmsg: ${(error as Error).message}\n`);
    }
  };
  const line = (level: number, message: string, stderr: boolean): void => {
    if (stderr) writeStdio(2, `sealroot: ${message}\n`);
    toKmsg(level, message);
  };
  const verbose = options.verbose ?? true;
  return {
    info: (message) => line(KMSG_INFO, message, verbose),
    notice: (message) => line(KMSG_NOTICE, message, true),
    warn: (message) => line(KMSG_WARNING, message, true),
    error: (message) => line(KMSG_ERR, message, true),
  };
}
