// The guest side of the tests: the measured-boot values, and the hand-built initramfs that carries sealroot.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildInitramfs, moduleLoadOrder, sharedLibraries } from './initramfs.ts';
import { ROOT, sealrootBinary, type Kernel } from './paths.ts';
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
export const GUEST_TCTI = 'device:/dev/tpmrm0';
export const GUEST_STATE_DIR = '/etc/sealroot/tpm';

/** Predicted PCR values of a boot state, as `N=<hex>` (sealroot provision --pcr-value). */
export function pcrValues(state: 'trusted' | 'rogue'): string[] {
  return TEST_PCRS.map((pcr, i) => `${pcr}=${predictPcr([MEASUREMENTS[state][i]]).toString('hex')}`);
}

/** tpm2_pcrextend arguments that put a (host) swtpm in the given state. */
export function pcrExtendArgs(state: 'trusted' | 'rogue'): string[] {
  return TEST_PCRS.map((pcr, i) => `${pcr}:sha256=${MEASUREMENTS[state][i].toString('hex')}`);
}

/** A guest's /etc/sealroot/boot.toml binding the trusted set to `pcrs`. */
export function bootConfigFor(pcrs: string, title = 'sealroot QEMU tests'): string {
  return `# ${title}
[tpm]
tcti = "${GUEST_TCTI}"
pcrs = "${pcrs}"
state = "${GUEST_STATE_DIR}"
policy-key = "/etc/sealroot/policy-key.pem"
cap-pcr = ${CAP_PCR}
`;
}

/** /etc/sealroot/boot.toml of the guest (both initramfs variants). */
export const BOOT_CONFIG = bootConfigFor(PCR_SELECTION);

/** ostree-prepare-root's configuration, read from the initramfs: the deployment is a composefs one. */
export const PREPARE_ROOT_CONF = '[composefs]\nenabled = yes\n';

/** The files both initramfs variants carry under /etc/sealroot-test (TPM commands, the second-unseal check). */
export function testFiles(): Record<string, Buffer | string> {
  const files: Record<string, Buffer | string> = {
    'precap.cmd': pcrExtendCommand(CAP_PCR, sha256('sealroot-test: something capped first')),
    // $sealroot_cmd, $tpm_state, $policy_key: how qemu/guest/after-switch runs the same check from its kit in the new root.
    'unseal.sh': `second_unseal() { \${sealroot_cmd:-/usr/bin/sealroot} unseal --tpm ${GUEST_TCTI} --pcrs ${PCR_SELECTION} --state \${tpm_state:-${GUEST_STATE_DIR}} \${policy_key:+--policy-key \$policy_key}; }\n`,
  };
  for (const state of ['trusted', 'rogue'] as const) {
    TEST_PCRS.forEach((pcr, i) => {
      files[`extend-${state}-${pcr}.cmd`] = pcrExtendCommand(pcr, MEASUREMENTS[state][i]);
    });
  }
  return files;
}

export const GUEST_MODULES = ['erofs', 'overlay', 'loop', 'virtio_blk'];

/**
 * The fast initramfs variant: busybox, sealroot and its libraries, the modules, qemu/guest/init. The measured-boot
 * scenarios (measured.ts) give their own boot.toml (another PCR selection), name and extra files.
 */
export function buildGuestInitramfs(kernel: Kernel, variant: { name?: string; bootConfig?: string; files?: Record<string, string | Buffer> } = {}): string {
  const files: Record<string, { content: string | Buffer; mode?: number }> = {
    'etc/sealroot/boot.toml': { content: variant.bootConfig ?? BOOT_CONFIG },
    'etc/sealroot/policy-key.pem': { content: fs.readFileSync(path.join(ROOT, 'keys/test-policy-key.pub.pem')) },
    'etc/initrd-release': { content: 'NAME="sealroot test initramfs"\n' },
    'usr/lib/ostree/prepare-root.conf': { content: PREPARE_ROOT_CONF },
  };
  for (const [name, content] of Object.entries(testFiles())) files[`etc/sealroot-test/${name}`] = { content };
  // boot-pid1 (test.handover=sealroot): what /init copies to /run for the check after sealroot's own switch-root.
  files['etc/sealroot-test/after-switch'] = { content: fs.readFileSync(path.join(ROOT, 'qemu/guest/after-switch'), 'utf8'), mode: 0o755 };
  // swap-pressure, swap-tamper (test.swap=...): what /init runs in the new root before its /sbin/init.
  files['etc/sealroot-test/swap-test'] = { content: fs.readFileSync(path.join(ROOT, 'qemu/guest/swap-test'), 'utf8'), mode: 0o755 };
  files['etc/sealroot-test/trust-action'] = { content: fs.readFileSync(path.join(ROOT, 'qemu/guest/trust-action'), 'utf8'), mode: 0o755 };
  files['etc/sealroot-test/libraries'] = { content: sharedLibraries(sealrootBinary()).map((library) => `${library}\n`).join('') };
  for (const [name, content] of Object.entries(variant.files ?? {})) files[name] = { content };
  return buildInitramfs({
    name: variant.name ?? 'guest',
    kernel,
    binaries: [{ source: sealrootBinary(), target: 'usr/bin/sealroot' }],
    modules: moduleLoadOrder(kernel, GUEST_MODULES),
    files,
    init: fs.readFileSync(path.join(ROOT, 'qemu/guest/init'), 'utf8'),
  });
}
