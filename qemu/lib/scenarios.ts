// The boot scenarios (names as in issue 7) and how each one is judged from the guest's console.
import type { DiskVariant } from './disk.ts';
import type { DiskEdit } from './disk-edit.ts';
import type { OstreeCase } from './ostree.ts';
import type { LifecycleBoot } from './lifecycle.ts';

export type Expectation =
  /** Boots into the verified root; every check the root's init prints holds. */
  | { kind: 'boot' }
  /** Boots, but reading the broken object fails (overlayfs verity=require: EIO; a missing object: ENOENT). */
  | { kind: 'eio'; error: RegExp; kernelMessage: RegExp }
  /** sealroot stops the boot before switch-root, with its reason on the console. */
  | { kind: 'stop'; reason: RegExp };

export interface Scenario {
  name: string;
  what: string;
  disk: DiskVariant;
  /** Which provisioned TPM the guest gets, or none at all. */
  tpm: 'trusted' | 'forged' | 'none';
  /** The boot state the stand-in boot chain measures. */
  pcr: 'trusted' | 'rogue' | 'none' | 'measured';
  precap?: boolean;
  /** The layout karg: composefs=<trusted digest>, composefs=<attacker's digest>, or ostree=. */
  karg: 'composefs' | 'composefs-forged' | 'ostree';
  initramfs: Initramfs;
  /**
   * The image verification path a booting scenario must log (verify-image: <path>: kernel|userspace fs-verity):
   * the ostree deployment's .ostree.cfs carries fs-verity (enabled in the prepare boot), the other images do not.
   */
  imageVerity?: ImageVerity;
  /**
   * Who switches root: the busybox /init after `sealroot boot` exits 0 (default), or sealroot itself, exec'd as PID 1
   * with --switch-root (it mounts root= and execs init=, here qemu/guest/after-switch, then the sample root's init).
   */
  handover?: 'busybox' | 'sealroot';
  /** Booted by OVMF with real measurements (qemu/lib/measured.ts): which of its cases. */
  measured?: 'boot' | 'initrd-changed' | 'cmdline-changed' | 'kernel-update' | 'systemd-boot' | 'kernel-changed';
  /** Boot a second time through this initramfs too; both boots must pass. */
  alsoThrough?: Initramfs;
  /** Issue 13: a disk deployed by the real ostree CLI (./ostree.ts); every BLS entry of it is booted with its options. */
  ostree?: OstreeCase;
  /** Issue 11: the boots of one machine, in order, on one TPM state (./lifecycle.ts); replaces the single boot. */
  lifecycle?: readonly LifecycleBoot[];
  /**
   * Issue 17: after switch-root the booted system enables swap on an extra disk and comes under memory pressure
   * (qemu/guest/swap-test); `tamper` then writes the image's bytes on the swap device, as the disk's attacker would.
   */
  swap?: 'pressure' | 'tamper';
  /** Boot once with each [memory] unswappable value ('default': the configuration does not set it). */
  unswappable?: readonly Unswappable[];
  /** Issue 17: the image is a file of the initramfs (root.image = EMBEDDED_IMAGE); the disk's own is not used. */
  embeddedImage?: true;
  /** Issue 12: the disk made hostile for this scenario only (qemu/lib/disk-edit.ts). */
  diskEdit?: DiskEdit;
  /** dracut runs keep dracut's defaults (no rd.shell=0 rd.emergency=poweroff): an emergency shell would show. */
  dracutDefaults?: true;
  /** A stop must come this soon after sealroot started (to the power-off): well within the unit's TimeoutStartSec. */
  stopWithinSeconds?: number;
  /**
   * Issue 12: sealroot.service's start timeout is shortened to this (test.sealroot-timeout=, a test-only generator)
   * and the TPM stalls from sealroot's start until sealroot reports the unit's SIGTERM (qemu/lib/tpm-stall.ts).
   */
  startTimeoutSeconds?: number;
  /** sealroot messages that must appear besides the last one (e.g. the failure recorded in the TPM). */
  alsoLogged?: readonly RegExp[];
  expect: Expectation;
}

/** busybox: hand-built, fast; dracut: dracut 059 with systemd (sealroot.service); dracut-shell: its pre-pivot hook. */
export type Initramfs = 'busybox' | 'dracut' | 'dracut-shell';

export type ImageVerity = 'kernel' | 'userspace';

export type Unswappable = 'default' | 'off';

/** Where boot-embedded's initramfs carries the trusted image (boot.toml root.image). */
export const EMBEDDED_IMAGE = '/usr/lib/sealroot-test/root.cfs';

/** The lifecycle scenarios' common fields: busybox initramfs, the lifecycle disk, the trusted TPM state. */
const LIFECYCLE = { disk: 'lifecycle', tpm: 'trusted', pcr: 'trusted', karg: 'composefs', initramfs: 'busybox', expect: { kind: 'boot' } } as const;

export const SCENARIOS: readonly Scenario[] = [
  { name: 'boot-ok', what: 'composefs-rs layout through dracut (sealroot.service, then the shell-flow pre-pivot hook): verified root, file reads, PCR capped', disk: 'base', tpm: 'trusted', pcr: 'trusted', karg: 'composefs', initramfs: 'dracut', alsoThrough: 'dracut-shell', imageVerity: 'userspace', expect: { kind: 'boot' } },
  { name: 'boot-ostree', what: 'a deployment made by the ostree CLI (sid\'s ostree: init-fs, os-init, commit --bootable, admin deploy with composefs.enabled = verity), booted with its BLS options', disk: 'base', tpm: 'trusted', pcr: 'trusted', karg: 'ostree', initramfs: 'busybox', imageVerity: 'kernel', ostree: 'deploy', expect: { kind: 'boot' } },
  { name: 'ostree-rollback', what: 'two deployments from ostree admin deploy, both digests in the trusted set (provision, then a signed trust update): each BLS entry boots its own deployment, verified', disk: 'base', tpm: 'trusted', pcr: 'trusted', karg: 'ostree', initramfs: 'busybox', imageVerity: 'kernel', ostree: 'rollback', expect: { kind: 'boot' } },
  { name: 'ostree-digestless', what: 'a composefs.enabled = yes deployment whose objects had no fs-verity: the image has no digests; refused before mount, never root ready', disk: 'base', tpm: 'trusted', pcr: 'trusted', karg: 'ostree', initramfs: 'busybox', ostree: 'digestless', expect: { kind: 'stop', reason: /^sealroot: validate-image: .*no fs-verity digest .*composefs\.enabled = verity.*fs-verity enabled on the objects before deploying/ } },
  { name: 'boot-compressed', what: 'zstd-compressed image, digest of the decompressed bytes', disk: 'compressed', tpm: 'trusted', pcr: 'trusted', karg: 'composefs', initramfs: 'busybox', expect: { kind: 'boot' } },
  { name: 'tampered-image', what: 'one bit flipped in the image; dracut initramfs: sealroot.service fails, FailureAction=poweroff-force (no emergency shell)', disk: 'tampered-image', tpm: 'trusted', pcr: 'trusted', karg: 'composefs', initramfs: 'dracut', expect: { kind: 'stop', reason: /^sealroot: verify-image: / } },
  { name: 'truncated-image', what: 'image cut to half its size: not the size the key holder signed', disk: 'truncated-image', tpm: 'trusted', pcr: 'trusted', karg: 'composefs', initramfs: 'busybox', expect: { kind: 'stop', reason: /^sealroot: copy-image: .*the trusted image is \d+/ } },
  { name: 'tampered-object', what: 'an object changed (fs-verity enabled on the new content)', disk: 'tampered-object', tpm: 'trusted', pcr: 'trusted', karg: 'composefs', initramfs: 'busybox', expect: { kind: 'eio', error: /Input\/output error/, kernelMessage: /overlayfs: lower file '[0-9a-f]+' has the wrong fs-verity digest/ } },
  { name: 'object-without-verity', what: 'an object without fs-verity', disk: 'object-without-verity', tpm: 'trusted', pcr: 'trusted', karg: 'composefs', initramfs: 'busybox', expect: { kind: 'eio', error: /Input\/output error/, kernelMessage: /overlayfs: lower file '[0-9a-f]+' has no fs-verity digest/ } },
  { name: 'missing-object', what: 'an object deleted from the store', disk: 'missing-object', tpm: 'trusted', pcr: 'trusted', karg: 'composefs', initramfs: 'busybox', expect: { kind: 'eio', error: /No such file or directory/, kernelMessage: /overlayfs: lazy lowerdata lookup failed \(sealroot-test\/victim\.bin, err=-2\)/ } },
  { name: 'forged-digest', what: "an attacker provisioned its own digest from a rogue boot; the disk holds the attacker's image", disk: 'forged', tpm: 'forged', pcr: 'trusted', karg: 'composefs-forged', initramfs: 'busybox', expect: { kind: 'stop', reason: /^sealroot: (tpm|locate-root|verify-image): / } },
  { name: 'pcr-mismatch', what: 'a rogue boot chain (other PCR values)', disk: 'base', tpm: 'trusted', pcr: 'rogue', karg: 'composefs', initramfs: 'busybox', expect: { kind: 'stop', reason: /^sealroot: tpm: / } },
  { name: 'no-tpm', what: 'no TPM at all', disk: 'base', tpm: 'none', pcr: 'none', karg: 'composefs', initramfs: 'busybox', expect: { kind: 'stop', reason: /^sealroot: tpm: / } },
  { name: 'boot-pid1', what: 'sealroot exec\'d as PID 1 (busybox initramfs): mounts root=, verifies, switches root itself, frees the initramfs', disk: 'base', tpm: 'trusted', pcr: 'trusted', karg: 'composefs', initramfs: 'busybox', handover: 'sealroot', imageVerity: 'userspace', expect: { kind: 'boot' } },
  { name: 'measured-boot', what: 'OVMF + swtpm, real measurements (PCRs 0,2,7,9); approvals predicted on the host before the first boot', disk: 'base', tpm: 'trusted', pcr: 'measured', karg: 'composefs', initramfs: 'busybox', measured: 'boot', expect: { kind: 'boot' } },
  { name: 'measured-initrd-changed', what: 'OVMF: the initramfs differs by one byte from the approved one', disk: 'base', tpm: 'trusted', pcr: 'measured', karg: 'composefs', initramfs: 'busybox', measured: 'initrd-changed', expect: { kind: 'stop', reason: /^sealroot: tpm: cannot read the trusted (digest|set): no read approval matches the current PCR values/ } },
  { name: 'measured-cmdline-changed', what: 'OVMF: init=/bin/sh added to the approved command line', disk: 'base', tpm: 'trusted', pcr: 'measured', karg: 'composefs', initramfs: 'busybox', measured: 'cmdline-changed', expect: { kind: 'stop', reason: /^sealroot: tpm: cannot read the trusted (digest|set): no read approval matches the current PCR values/ } },
  { name: 'kernel-update', what: 'OVMF: the verified system predicts and signs approvals for a new initramfs; the reboot into it, without re-provisioning', disk: 'base', tpm: 'trusted', pcr: 'measured', karg: 'composefs', initramfs: 'busybox', measured: 'kernel-update', expect: { kind: 'boot' } },
  { name: 'start-timeout', what: 'the TPM stalls when sealroot starts (swtpm stopped); sealroot.service\'s start timeout (shortened to 12 s) sends SIGTERM: sealroot takes its failure path (the TPM continued: cap, boot-failed event), one line naming the signal, the unit powers off, no shell (dracut defaults)', disk: 'base', tpm: 'trusted', pcr: 'trusted', karg: 'composefs', initramfs: 'dracut', dracutDefaults: true, startTimeoutSeconds: 12, alsoLogged: [/^sealroot: received SIGTERM: stopping the boot/, /^sealroot: tpm: boot failed: recorded in PCR 15/], expect: { kind: 'stop', reason: /^sealroot: \S+: interrupted by SIGTERM$/ } },
  { name: 'hostile-state', what: 'approvals.json on the physical root is a FIFO; dracut with its default rd.shell: sealroot.service stops with one line well within TimeoutStartSec and powers off (no shell); then the shell flow\'s hook the same', disk: 'base', diskEdit: 'approvals-fifo', tpm: 'trusted', pcr: 'trusted', karg: 'composefs', initramfs: 'dracut', alsoThrough: 'dracut-shell', dracutDefaults: true, stopWithinSeconds: 30, expect: { kind: 'stop', reason: /^sealroot: tpm: .*unusable state file: is a FIFO, not a regular file/ } },
  { name: 'boot-embedded', what: 'the image is a file of the initramfs (root.image), objects and state on the disk, whose own image is tampered: verified root from the initramfs\'s image, which is then removed', disk: 'tampered-image', tpm: 'trusted', pcr: 'trusted', karg: 'composefs', initramfs: 'busybox', embeddedImage: true, imageVerity: 'userspace', expect: { kind: 'boot' } },
  { name: 'swap-pressure', what: 'swap enabled after switch-root, then memory pressure: the image stays in huge pages (HugePages_* before and after), none of its bytes on the swap device, the root reads right', disk: 'base', tpm: 'trusted', pcr: 'trusted', karg: 'composefs', initramfs: 'busybox', swap: 'pressure', expect: { kind: 'boot' } },
  { name: 'swap-tamper', what: 'the attacker changes a name of the image on the swap device: shows up with memory.unswappable = "off"; the same steps change nothing with the default', disk: 'base', tpm: 'trusted', pcr: 'trusted', karg: 'composefs', initramfs: 'busybox', swap: 'tamper', unswappable: ['off', 'default'], expect: { kind: 'boot' } },
  { name: 'upgrade', what: 'boot A (version 1); the running system syncs its boot entries (trust sync: B\'s signed update applied); reboot: B verified as version 2', ...LIFECYCLE, lifecycle: [
    { image: 'A', pcr: 'trusted', action: 'sync', expect: { kind: 'boot', version: 1 }, lines: [/^@@ SYNC .*sealroot-B\.conf: applied: version 2 .* into slot 1, replacing an empty slot$/, /^@@ SYNC .*sealroot-A\.conf: present: version 1 /, /^@@ ACTION sync done$/] },
    { image: 'B', pcr: 'trusted', expect: { kind: 'boot', version: 2 } },
  ] },
  { name: 'rollback', what: 'after the upgrade to B, the previous entry A still boots, verified as version 1', ...LIFECYCLE, lifecycle: [
    { image: 'A', pcr: 'trusted', action: 'apply:B', expect: { kind: 'boot', version: 1 }, lines: [/^@@ APPLY B exit 0$/] },
    { image: 'B', pcr: 'trusted', expect: { kind: 'boot', version: 2 } },
    { image: 'A', pcr: 'trusted', expect: { kind: 'boot', version: 1 } },
  ] },
  { name: 'retire', what: 'after a third version C, A is refused with a clear line; B and C boot', ...LIFECYCLE, lifecycle: [
    { image: 'A', pcr: 'trusted', action: 'apply:B', expect: { kind: 'boot', version: 1 }, lines: [/^@@ APPLY B exit 0$/] },
    { image: 'B', pcr: 'trusted', action: 'apply:C', expect: { kind: 'boot', version: 2 }, lines: [/^@@ APPLY C .*version 3 .* applied into slot 0, replacing version 1$/] },
    { image: 'A', pcr: 'trusted', expect: { kind: 'stop', reason: /^sealroot: trusted-image: composefs= names sha256:[0-9a-f]{64}, which is not in the trusted set \(version 3 sha256:[0-9a-f]{64}, version 2 sha256:[0-9a-f]{64}\)/ } },
    { image: 'C', pcr: 'trusted', expect: { kind: 'boot', version: 3 } },
  ] },
  { name: 'replay-refused', what: 'old update files applied from a rogue boot and from the running system change nothing; the next boots see the signed set', ...LIFECYCLE, lifecycle: [
    { image: 'A', pcr: 'trusted', action: 'apply:B,C', expect: { kind: 'boot', version: 1 }, lines: [/^@@ APPLY B exit 0$/, /^@@ APPLY C exit 0$/] },
    { image: 'A', pcr: 'rogue', action: 'apply:A,B', actionAlways: true, expect: { kind: 'stop', reason: /^sealroot: tpm: cannot read the trusted set: no read approval matches/ }, lines: [/^@@ APPLY A .*version 1 .* is not newer than any version in the trusted set: a replayed or older update/, /^@@ APPLY A exit 1$/, /^@@ APPLY B .*already trusted/] },
    { image: 'C', pcr: 'trusted', action: 'apply:A', expect: { kind: 'boot', version: 3 }, lines: [/^@@ APPLY A .*not newer than any version in the trusted set/, /^@@ APPLY A exit 1$/] },
    { image: 'A', pcr: 'trusted', expect: { kind: 'stop', reason: /^sealroot: trusted-image: composefs= names .* which is not in the trusted set/ } },
    { image: 'B', pcr: 'trusted', expect: { kind: 'boot', version: 2 } },
  ] },
  { name: 'killed-boot-no-write', what: 'a trusted boot SIGKILLed right after the cap; its root shell tries every key-less write; the next boot still reads the set the key holder signed', ...LIFECYCLE, lifecycle: [
    { image: 'A', pcr: 'trusted', kill: true, action: 'attack', actionAlways: true, expect: { kind: 'any' }, lines: [/^@@ KILLED (after-cap|completed-first)$/, /^@@ ATTACK provision-no-key exit 2$/, /^@@ ATTACK provision-own-key exit 1$/, /^@@ ATTACK apply-own-key exit 1$/, /^@@ ATTACK apply-forged: .*not signed by the policy key/, /^@@ ATTACK apply-forged exit 1$/, /^@@ ATTACK replay-old: .*already trusted/, /^@@ ACTION attack done$/] },
    { image: 'forged', pcr: 'trusted', expect: { kind: 'stop', reason: /^sealroot: trusted-image: composefs= names .* which is not in the trusted set \(version 1 sha256:[0-9a-f]{64}\)/ } },
    { image: 'A', pcr: 'trusted', expect: { kind: 'boot', version: 1 } },
  ] },
  { name: 'measured-systemd-boot', what: 'OVMF -> systemd-boot -> the kernel from an ESP (PCRs 0,2,4,7,9): PCR 4 predicted on the host from the kernel file\'s Authenticode hash, over a reference boot of another kernel', disk: 'base', tpm: 'trusted', pcr: 'measured', karg: 'composefs', initramfs: 'busybox', measured: 'systemd-boot', expect: { kind: 'boot' } },
  { name: 'measured-kernel-changed', what: 'the same ESP boot with another kernel image than the approved one (PCR 4)', disk: 'base', tpm: 'trusted', pcr: 'measured', karg: 'composefs', initramfs: 'busybox', measured: 'kernel-changed', expect: { kind: 'stop', reason: /^sealroot: tpm: cannot read the trusted (digest|set): no read approval matches the current PCR values/ } },
  { name: 'pcr-capped', what: 'the cap PCR already extended before sealroot runs (a replay later in the same boot)', disk: 'base', tpm: 'trusted', pcr: 'trusted', precap: true, karg: 'composefs', initramfs: 'busybox', expect: { kind: 'stop', reason: /^sealroot: tpm: / } },
];

export interface Verdict {
  pass: boolean;
  reason: string;
}

/** The loader's line naming its path: `verify-image: <path>: kernel fs-verity (why)` (src/image/load.ts). */
const VERIFY_METHOD = /^sealroot: verify-image: [^:]+: (kernel|userspace) fs-verity \(/;

const has = (lines: readonly string[], exact: string): boolean => lines.includes(exact);

/** Pure: judges one boot from its console lines. */
export function judge(scenario: Scenario, lines: readonly string[], timedOut: boolean, victimMd5: string, unswappable: Unswappable = 'default'): Verdict {
  const fail = (reason: string): Verdict => ({ pass: false, reason });
  if (timedOut) return fail('timed out (no decision from the guest)');
  const panic = lines.find((line) => /Kernel panic|Oops:|BUG:|general protection fault/.test(line));
  if (panic !== undefined) return fail(`guest kernel: ${panic.trim()}`);
  // The kernel's stamp of its power-off message, wherever it is on the line: the console interleaves the kernel's
  // messages with userspace output, e.g. "dracut Warning: ... refusing to boot (powe[   17.553396] sysrq: Power Off".
  const POWER_OFF = /\[\s*(\d+\.\d+)\]\s*(?:reboot: Power down|sysrq: Power Off)/;
  const powerDown = lines.find((line) => /reboot: Power down|sysrq: Power Off/.test(line));
  // The shell flow's failure path powers off from sealroot's own hook: no harness hook runs after it to print END.
  const shellFlowStop = scenario.initramfs === 'dracut-shell' && scenario.expect.kind === 'stop' && powerDown !== undefined;
  if (!has(lines, '@@ END') && !shellFlowStop) return fail('the guest never printed its end line');
  if (scenario.swap !== undefined) return judgeSwap(scenario.swap, lines, victimMd5, unswappable);
  const switched = lines.some((line) => line.startsWith('@@ T root-init '));
  const sealrootLines = sealrootMessages(lines);
  if (scenario.initramfs === 'dracut' && scenario.tpm !== 'none' && lines.some((line) => line.startsWith('@@ T sealroot-start '))) {
    // Issue 16: sealroot.service waited for the TPM (dracut/90sealroot/module-setup.sh).
    const unit = lines.find((line) => line.startsWith('@@ TPM-UNIT '));
    if (unit === undefined || !/^@@ TPM-UNIT (tpm2\.target|dev-tpm\S*\.device) active$/.test(unit)) return fail(`sealroot.service was not ordered after an active TPM unit: ${unit ?? 'no TPM-UNIT line'}`);
  }
  if (scenario.expect.kind === 'stop') {
    if (switched) return fail('the boot reached the root\'s init: it should have stopped before switch-root');
    const status = lines.find((line) => line.startsWith('@@ SEALROOT-EXIT '));
    // (The shell flow has no ExecStopPost to print the status: its hook powers off.)
    if (status === undefined && scenario.initramfs !== 'dracut-shell') return fail(`sealroot did not run to an exit: ${lines.find((line) => line.startsWith('@@ STOPPED')) ?? 'no STOPPED line'}`);
    if (status === '@@ SEALROOT-EXIT 0') return fail('sealroot boot exited 0');
    const reason = scenario.expect.reason;
    // Under dracut a failed sealroot powers the machine off and no emergency shell starts on the way
    // (dracut/90sealroot: FailureAction=poweroff-force; the shell flow's hook: sysrq power-off, never `die`).
    if (scenario.initramfs !== 'busybox') {
      const shell = lines.find((line) => /Entering emergency mode|Boot has failed|emergency shell|rdsosreport|Give root password/i.test(line));
      if (shell !== undefined) return fail(`an emergency shell path started after the failure: ${shell.trim()}`);
      if (powerDown === undefined) return fail('the guest did not power off after sealroot failed');
    }
    if (scenario.stopWithinSeconds !== undefined) {
      const started = lines.find((line) => line.startsWith('@@ T sealroot-start '));
      const stoppedAt = Number(POWER_OFF.exec(powerDown ?? '')?.[1]);
      const startedAt = Number(started?.split(' ')[3]);
      if (!(stoppedAt - startedAt <= scenario.stopWithinSeconds)) {
        return fail(`the stop took ${(stoppedAt - startedAt).toFixed(1)} s from sealroot's start to the power-off (limit ${scenario.stopWithinSeconds} s): ${started ?? 'no start stamp'}, ${powerDown ?? 'no power-off'}`);
      }
    }
    // sealroot's failure is its last message (main() prints it as it exits); an earlier info line of the same
    // step (e.g. "tpm: capped PCR 15") proves nothing.
    const last = sealrootLines.at(-1);
    if (last === undefined || !reason.test(last)) return fail(`sealroot's last message does not match ${reason}: ${last ?? 'nothing'}`);
    for (const wanted of scenario.alsoLogged ?? []) {
      if (!sealrootLines.some((line) => wanted.test(line))) return fail(`sealroot never logged ${wanted}`);
    }
    return { pass: true, reason: last };
  }

  let handedOver = '';
  if (scenario.handover === 'sealroot') {
    const verdict = judgeSealrootHandover(lines, sealrootLines);
    if (!verdict.pass) return verdict;
    handedOver = `; ${verdict.reason}`;
  } else if (!has(lines, '@@ SEALROOT-EXIT 0')) {
    return fail(`sealroot boot failed: ${sealrootLines.at(-1) ?? lines.find((line) => line.startsWith('@@ STOPPED')) ?? 'no exit line'}`);
  }
  if (!has(lines, '@@ CHECK second-unseal refused')) return fail('a second unseal after boot was not refused (PCR not capped)');
  const pcr15 = lines.find((line) => line.startsWith('@@ PCR15 '));
  if (pcr15 === undefined || /^@@ PCR15 0+$/.test(pcr15)) return fail(`the cap PCR reads ${pcr15 ?? 'nothing'} after boot`);
  if (!switched) return fail('the root\'s init never ran');
  for (const check of ['root-overlay-verity', 'hello']) {
    if (!has(lines, `@@ CHECK ${check} ok`)) return fail(lines.find((line) => line.startsWith(`@@ CHECK ${check}`)) ?? `no ${check} check`);
  }
  let embedded = '';
  if (scenario.embeddedImage === true) {
    const located = sealrootLines.find((line) => line.startsWith(`sealroot: locate-root: the image is the initramfs's ${EMBEDDED_IMAGE} (root.image)`));
    if (located === undefined) return fail(`sealroot did not take the initramfs's image: ${sealrootLines.find((line) => line.includes('locate-root')) ?? 'no locate-root line'}`);
    const loop = lines.find((line) => line.startsWith('@@ LOOP '));
    if (loop === undefined || !loop.includes('/memfd:sealroot-image')) return fail(`the loop device is not backed by the sealed memfd: ${loop ?? 'no LOOP line'}`);
    if (!has(lines, '@@ EMBEDDED image removed from the initramfs')) return fail('the initramfs\'s image was not removed before switch-root');
    embedded = `; ${located.slice('sealroot: '.length)}; ${loop.slice(3)}; the initramfs's image removed before switch-root`;
  }
  let method = '';
  if (scenario.imageVerity !== undefined) {
    const logged = sealrootLines.find((line) => VERIFY_METHOD.test(line));
    if (logged === undefined || VERIFY_METHOD.exec(logged)?.[1] !== scenario.imageVerity) {
      return fail(`the image was not verified by ${scenario.imageVerity} fs-verity: ${logged ?? 'no verify-image line'}`);
    }
    method = `; ${logged}`;
  }
  const victim = lines.find((line) => line.startsWith('@@ VICTIM '));
  if (scenario.expect.kind === 'boot') {
    if (victim !== `@@ VICTIM read ok ${victimMd5}`) return fail(`victim.bin: ${victim ?? 'no line'} (expected md5 ${victimMd5})`);
    return { pass: true, reason: `verified root mounted, checks passed${method}${handedOver}${embedded}` };
  }
  const { error, kernelMessage } = scenario.expect;
  if (victim === undefined || !victim.startsWith('@@ VICTIM read failed: ') || !error.test(victim)) {
    return fail(`reading the broken object did not fail with ${error}: ${victim ?? 'no line'}`);
  }
  const message = lines.find((line) => kernelMessage.test(line));
  if (message === undefined) return fail(`no kernel message matching ${kernelMessage}`);
  return { pass: true, reason: `${victim.slice(3)}; ${message.replace(/^\[[\s\d.]+\]\s*/, '')}` };
}

/** Pure: the kernel's figures of one `@@ SWAP <when> Name: value ...` line (kB or pages). */
export function swapFigures(lines: readonly string[], when: string): Record<string, number> | undefined {
  const line = lines.find((entry) => entry.startsWith(`@@ SWAP ${when} `));
  if (line === undefined) return undefined;
  const figures: Record<string, number> = {};
  for (const match of line.matchAll(/(\w+): (\d+)/g)) figures[match[1]!] = Number(match[2]);
  return figures;
}

/**
 * Pure: swap-pressure and swap-tamper (qemu/guest/swap-test). The pressure must have reached the swap device; the
 * image's pages are where the configuration says: in huge pages (HugePages_Total - HugePages_Free, the same before
 * and after) and not on the swap device, or (unswappable = "off", tamper) on the swap device, where the attacker's
 * change shows up in the mounted root.
 */
function judgeSwap(mode: 'pressure' | 'tamper', lines: readonly string[], victimMd5: string, unswappable: Unswappable): Verdict {
  const fail = (reason: string): Verdict => ({ pass: false, reason });
  if (!has(lines, '@@ SEALROOT-EXIT 0')) return fail(`sealroot boot failed: ${sealrootMessages(lines).at(-1) ?? 'no exit line'}`);
  if (!lines.some((line) => line.startsWith('@@ T root-init '))) return fail('the root\'s init never ran');
  const before = swapFigures(lines, 'before');
  const after = swapFigures(lines, 'after');
  if (before === undefined || after === undefined) return fail(`no kernel figures from swap-test: ${lines.find((line) => line.startsWith('@@ SWAP')) ?? 'no SWAP line'}`);
  const swapped = after.SwapTotal! - after.SwapFree!;
  if (!(after.SwapTotal! > 0 && swapped > 0)) return fail(`the pressure never reached the swap device (SwapTotal ${after.SwapTotal} kB, SwapFree ${after.SwapFree} kB)`);
  const hugeBefore = before.HugePages_Total! - before.HugePages_Free!;
  const hugeAfter = after.HugePages_Total! - after.HugePages_Free!;
  const inSwap = lines.find((line) => line.startsWith('@@ SWAP image-in-swap '));
  const figures = `huge pages in use ${hugeBefore} -> ${hugeAfter}, swap used ${Math.round(swapped / 1024)} MiB; ${inSwap?.slice(3) ?? 'no image-in-swap line'}`;
  const listing = (when: string) => lines.find((line) => line.startsWith(`@@ SWAP listing-${when} `))?.slice(`@@ SWAP listing-${when} `.length).trim().split(/\s+/);
  if (unswappable === 'off') {
    if (mode !== 'tamper') return fail('unswappable = "off" is only booted to show the attack (swap-tamper)');
    if (!lines.includes('@@ MEMORY unswappable=off')) return fail('the boot did not run with memory.unswappable = "off"');
    if (hugeBefore !== 0) return fail(`the image is in huge pages although unswappable = "off": ${figures}`);
    if (inSwap === undefined || !inSwap.startsWith('@@ SWAP image-in-swap yes')) return fail(`the image's pages never reached the swap device: ${figures}`);
    const after = listing('after');
    if (after === undefined || !after.includes('HACKD.txt') || after.includes('hello.txt')) {
      return fail(`the change written on the swap device did not show up in the root: ${lines.find((line) => line.startsWith('@@ SWAP listing-after')) ?? 'no listing'}; ${figures}`);
    }
    return { pass: true, reason: `attack shown: the name changed on the swap device appears in the verified root (ls: ${after.join(' ')}); ${figures}` };
  }
  if (hugeBefore <= 0 || hugeAfter !== hugeBefore) return fail(`the image's huge pages did not stay: ${figures}`);
  if (inSwap === undefined || !inSwap.startsWith('@@ SWAP image-in-swap no')) return fail(`the image's bytes are on the swap device: ${figures}`);
  if (mode === 'tamper') {
    const before = listing('before');
    const after = listing('after');
    if (before === undefined || after === undefined || before.join(' ') !== after.join(' ') || !after.includes('hello.txt')) {
      return fail(`the listing changed: ${before?.join(' ')} -> ${after?.join(' ')}`);
    }
  }
  for (const check of ['root-overlay-verity', 'hello']) {
    if (!has(lines, `@@ CHECK ${check} ok`)) return fail(lines.find((line) => line.startsWith(`@@ CHECK ${check}`)) ?? `no ${check} check`);
  }
  const victim = lines.find((line) => line.startsWith('@@ VICTIM '));
  if (victim !== `@@ VICTIM read ok ${victimMd5}`) return fail(`victim.bin: ${victim ?? 'no line'} (expected md5 ${victimMd5})`);
  return { pass: true, reason: `image resident in huge pages through the pressure, the root reads right; ${figures}` };
}

/** sealroot's own hand-over as PID 1 (src/boot/handover.ts): the initramfs freed, then init= exec'd. */
const FREED = /^sealroot: freed the initramfs: ([1-9]\d*) entries removed$/;
const EXEC_INIT = 'sealroot: switching root: exec /bin/sh';
const SECOND_UNSEAL_REFUSED = /^sealroot: tpm: cannot read the trusted (digest|set): no read approval matches the current PCR values/;

/**
 * Pure: the proof that sealroot, exec'd as PID 1, switched root itself: the busybox /init exec'd it as PID 1 and
 * neither got an exit status back nor ran busybox switch_root; sealroot freed the initramfs and exec'd init=; the
 * first program in the new root runs as PID 1 on the verified overlay.
 */
function judgeSealrootHandover(lines: readonly string[], sealrootLines: readonly string[]): Verdict {
  const fail = (reason: string): Verdict => ({ pass: false, reason });
  if (!has(lines, '@@ EXEC sealroot as PID 1')) return fail(`sealroot was not exec'd as PID 1: ${lines.find((line) => line.startsWith('@@ EXEC ')) ?? 'no EXEC line'}`);
  const busybox = lines.find((line) => line.startsWith('@@ SEALROOT-EXIT ') || line.startsWith('@@ T switch-root '));
  if (busybox !== undefined) return fail(`the busybox /init got control back: ${busybox}`);
  const freed = sealrootLines.findIndex((line) => FREED.test(line));
  if (freed < 0) return fail(`sealroot did not free the initramfs: ${sealrootLines.find((line) => line.includes('initramfs')) ?? sealrootLines.at(-1) ?? 'no sealroot message'}`);
  const exec = sealrootLines.indexOf(EXEC_INIT);
  if (exec < freed) return fail(`no "${EXEC_INIT}" after freeing the initramfs: ${sealrootLines.at(-1) ?? 'nothing'}`);
  // The second unseal runs from a kit in the new root: its refusal counts only if the TPM refused it (the capped PCR no
  // longer matches the read approvals), not if the kit failed to run or to find its files.
  const refusal = sealrootLines.slice(exec + 1).filter((line) => line.startsWith('sealroot: tpm: ')).at(-1);
  if (refusal === undefined || !SECOND_UNSEAL_REFUSED.test(refusal)) return fail(`the second unseal after the hand-over was not refused by the TPM policy: ${refusal ?? 'no tpm message'}`);
  const handover = lines.find((line) => line.startsWith('@@ HANDOVER '));
  if (handover === undefined || !/^@@ HANDOVER pid=1 root=\S+ \/ overlay .*verity=require/.test(handover)) {
    return fail(`init= did not run as PID 1 on the verified overlay: ${handover ?? 'no HANDOVER line'}`);
  }
  return { pass: true, reason: `${sealrootLines[freed]!.slice('sealroot: '.length)}; init= ran as PID 1 in the new root` };
}

/**
 * Pure: sealroot's messages on the console, in order. They arrive on stderr ("sealroot: ..."), through /dev/kmsg
 * ("[  12.3] sealroot: ...") and, under systemd, through the journal ("[  12.3] sealroot[224]: sealroot: ...");
 * serial output of two writers may share one line, so a line is split at every kernel timestamp.
 */
export function sealrootMessages(lines: readonly string[]): string[] {
  const messages: string[] = [];
  for (const line of lines) {
    for (const piece of line.split(/\[\s*\d+\.\d+\]\s*/)) {
      const message = piece.replace(/^[\w.@-]+\[\d+\]:\s*/, '').trimEnd();
      if (message.startsWith('sealroot: ')) messages.push(message);
    }
  }
  return messages;
}

/** The console lines worth showing for a failed scenario. */
export function relevantLines(lines: readonly string[]): string[] {
  const picked = lines.filter((line) => /^@@ |sealroot|overlayfs|erofs|fs-verity|tpm|panic|Oops|BUG|error|emergency|Failed/i.test(line));
  const tail = lines.slice(-12).filter((line) => !picked.slice(-12).includes(line));
  return tail.length === 0 ? picked.slice(-40) : [...picked.slice(-40), '--- last console lines:', ...tail];
}
