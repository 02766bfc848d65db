// The guest side of the tests: the measured-boot values, and the hand-built initramfs that carries sealroot.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildInitramfs, moduleLoadOrder } from './initramfs.ts';
import { ROOT, SEALROOT_BIN, type Kernel } from './paths.ts';
import { pcrExtendCommand, predictPcr, sha256 } from './tpm-commands.ts';

/** The PCRs the trusted digest is bound to, and what the stand-in boot chain extends into them. */
export const TEST_PCRS = [9, 12] as const;
export const PCR_SELECTION = `sha256:${TEST_PCRS.join(',')}`;
const MEASUREMENTS = {
  trusted: TEST_PCRS.map((pcr) => sha256(`sealroot-test trusted boot chain, PCR ${pcr}`)),
  rogue: TEST_PCRS.map((pcr) => sha256(`sealroot-test ROGUE boot chain, PCR ${pcr}`)),
};
/** sealroot's cap PCR (issue 4's default). */
export const CAP_PCR = 15;

/** Predicted PCR values of a boot state, as `N=<hex>` (sealroot provision --pcr-value). */
export function pcrValues(state: 'trusted' | 'rogue'): string[] {
  return TEST_PCRS.map((pcr, i) => `${pcr}=${predictPcr([MEASUREMENTS[state][i]]).toString('hex')}`);
}

/** tpm2_pcrextend arguments that put a (host) swtpm in the given state. */
export function pcrExtendArgs(state: 'trusted' | 'rogue'): string[] {
  return TEST_PCRS.map((pcr, i) => `${pcr}:sha256=${MEASUREMENTS[state][i].toString('hex')}`);
}

export const GUEST_MODULES = ['erofs', 'overlay', 'loop', 'virtio_blk'];

export interface GuestInitramfsOptions {
  kernel: Kernel;
  /** Shell fragment sourced by /init: runs the step under test (sets $?) and defines second_unseal(). */
  bootScript: string;
  extraFiles?: Record<string, { content: string | Buffer; mode?: number }>;
}

export function buildGuestInitramfs(options: GuestInitramfsOptions): string {
  if (!fs.existsSync(SEALROOT_BIN)) throw new Error(`${SEALROOT_BIN} is missing: run npm run build`);
  const files: Record<string, { content: string | Buffer; mode?: number }> = {
    'etc/sealroot-test/boot.sh': { content: options.bootScript },
    'etc/sealroot-test/precap.cmd': { content: pcrExtendCommand(CAP_PCR, sha256('sealroot-test: something capped first')) },
    'etc/initrd-release': { content: 'NAME="sealroot test initramfs"\n' },
    ...options.extraFiles,
  };
  for (const state of ['trusted', 'rogue'] as const) {
    TEST_PCRS.forEach((pcr, i) => {
      files[`etc/sealroot-test/extend-${state}-${pcr}.cmd`] = { content: pcrExtendCommand(pcr, MEASUREMENTS[state][i]) };
    });
  }
  return buildInitramfs({
    name: 'guest',
    kernel: options.kernel,
    binaries: [{ source: SEALROOT_BIN, target: 'usr/bin/sealroot' }],
    modules: moduleLoadOrder(options.kernel, GUEST_MODULES),
    files,
    init: fs.readFileSync(path.join(ROOT, 'qemu/guest/init'), 'utf8'),
  });
}
