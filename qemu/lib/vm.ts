// Boots the guest under QEMU TCG and returns its console. Pass/fail is always decided from lines the guest prints,
// never from QEMU's exit status (QEMU exits 0 after a guest panic, too): see ../../../shared/notes/qemu.md.
import { spawn } from 'node:child_process';
import type { Kernel } from './paths.ts';

export interface BootOptions {
  kernel: Kernel;
  initrd: string;
  /** Disk images attached as virtio drives vda, vdb, ...; `snapshot` keeps the image file unchanged. */
  drives: { file: string; snapshot?: boolean }[];
  append: string;
  /** Unix socket of a running swtpm (ctrl channel); without it the guest has no TPM. */
  tpmSocket?: string;
  timeoutSeconds: number;
  memoryMiB?: number;
  /** Called for every console line as it arrives (for live output). */
  onLine?: (line: string) => void;
  /**
   * UEFI firmware (OVMF) instead of SeaBIOS: q35, the code read-only and a writable copy of the variables as pflash,
   * the TPM as tpm-tis; the firmware and the kernel's EFI stub measure the boot into the TPM (shared/notes/qemu.md).
   */
  firmware?: {
    code: string;
    vars: string;
    /**
     * An ESP (a directory, shown to the guest as a FAT disk after `drives`) that the firmware boots instead of
     * QEMU -kernel: the kernel is then loaded unpatched from a file (its PCR 4 measurement is the file's).
     * `kernel`, `initrd` and `append` are not passed to QEMU then; the ESP's boot loader has its own.
     */
    esp?: string;
  };
}

/** The command line QEMU passes: what the EFI stub measures, with OVMF's " initrd=initrd" after it. */
export function kernelCommandLine(append: string): string {
  return `console=ttyS0 panic=-1 oops=panic ${append}`;
}

export interface BootResult {
  console: string;
  lines: string[];
  timedOut: boolean;
  millis: number;
}

export const QEMU = 'qemu-system-x86_64';

export function qemuArgs(options: BootOptions): string[] {
  const args = [
    '-accel', 'tcg',
    // cx16 off: with cmpxchg16b the 6.12 guest crashes at random under this TCG (shared/notes/qemu.md).
    '-cpu', 'qemu64,-cx16', '-smp', '1', '-m', String(options.memoryMiB ?? 1024),
    '-display', 'none', '-monitor', 'none', '-serial', 'stdio', '-no-reboot', '-nic', 'none', '-nodefaults',
  ];
  if (options.firmware?.esp === undefined) args.push('-kernel', options.kernel.vmlinuz, '-initrd', options.initrd, '-append', kernelCommandLine(options.append));
  if (options.firmware !== undefined) {
    args.push('-machine', 'q35', '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${options.firmware.code}`,
      '-drive', `if=pflash,format=raw,unit=1,file=${options.firmware.vars}`);
  }
  for (const drive of options.drives) {
    args.push('-drive', `file=${drive.file},format=raw,if=virtio,cache=unsafe${drive.snapshot === true ? ',snapshot=on' : ''}`);
  }
  // QEMU's vvfat: the directory as a read-only FAT disk.
  if (options.firmware?.esp !== undefined) args.push('-drive', `file=fat:${options.firmware.esp},format=raw,if=virtio,readonly=on`);
  if (options.tpmSocket !== undefined) {
    args.push('-chardev', `socket,id=chrtpm,path=${options.tpmSocket}`, '-tpmdev', 'emulator,id=tpm0,chardev=chrtpm', '-device', `${options.firmware === undefined ? 'tpm-crb' : 'tpm-tis'},tpmdev=tpm0`);
  }
  return args;
}

/** Boots and waits for QEMU to exit (guest poweroff, panic with -no-reboot) or for the timeout. */
export function boot(options: BootOptions): Promise<BootResult> {
  const started = performance.now();
  // The outer `timeout` kills QEMU even if this process dies; the guest may also hang after an Oops.
  const child = spawn('timeout', ['--kill-after=5', String(options.timeoutSeconds), QEMU, ...qemuArgs(options)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let console = '';
  let partial = '';
  const lines: string[] = [];
  const take = (chunk: string): void => {
    console += chunk;
    partial += chunk;
    let newline: number;
    while ((newline = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, newline).replace(/\r$/, '');
      partial = partial.slice(newline + 1);
      lines.push(line);
      options.onLine?.(line);
    }
  };
  child.stdout.setEncoding('utf8').on('data', take);
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => take(chunk.replace(/^/gm, 'qemu: ')));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      if (partial.length > 0) take('\n');
      resolve({ console, lines, timedOut: code === 124 || code === 137, millis: performance.now() - started });
    });
  });
}
