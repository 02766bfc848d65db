// The boot scenarios (names as in issue 7) and how each one is judged from the guest's console.
import type { DiskVariant } from './disk.ts';

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
  measured?: 'boot' | 'initrd-changed' | 'cmdline-changed' | 'kernel-update';
  /** Boot a second time through this initramfs too; both boots must pass. */
  alsoThrough?: Initramfs;
  expect: Expectation;
}

/** busybox: hand-built, fast; dracut: dracut 059 with systemd (sealroot.service); dracut-shell: its pre-pivot hook. */
export type Initramfs = 'busybox' | 'dracut' | 'dracut-shell';

export type ImageVerity = 'kernel' | 'userspace';

export const SCENARIOS: readonly Scenario[] = [
  { name: 'boot-ok', what: 'composefs-rs layout through dracut (sealroot.service, then the shell-flow pre-pivot hook): verified root, file reads, PCR capped', disk: 'base', tpm: 'trusted', pcr: 'trusted', karg: 'composefs', initramfs: 'dracut', alsoThrough: 'dracut-shell', imageVerity: 'userspace', expect: { kind: 'boot' } },
  { name: 'boot-ostree', what: 'ostree deployment (.ostree.cfs, repo objects)', disk: 'base', tpm: 'trusted', pcr: 'trusted', karg: 'ostree', initramfs: 'busybox', imageVerity: 'kernel', expect: { kind: 'boot' } },
  { name: 'boot-compressed', what: 'zstd-compressed image, digest of the decompressed bytes', disk: 'compressed', tpm: 'trusted', pcr: 'trusted', karg: 'composefs', initramfs: 'busybox', expect: { kind: 'boot' } },
  { name: 'tampered-image', what: 'one bit flipped in the image; dracut initramfs: sealroot.service fails, OnFailure=emergency.target', disk: 'tampered-image', tpm: 'trusted', pcr: 'trusted', karg: 'composefs', initramfs: 'dracut', expect: { kind: 'stop', reason: /^sealroot: verify-image: / } },
  { name: 'truncated-image', what: 'image cut to half its size', disk: 'truncated-image', tpm: 'trusted', pcr: 'trusted', karg: 'composefs', initramfs: 'busybox', expect: { kind: 'stop', reason: /^sealroot: (verify-image|validate-image): / } },
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
export function judge(scenario: Scenario, lines: readonly string[], timedOut: boolean, victimMd5: string): Verdict {
  const fail = (reason: string): Verdict => ({ pass: false, reason });
  if (timedOut) return fail('timed out (no decision from the guest)');
  const panic = lines.find((line) => /Kernel panic|Oops:|BUG:|general protection fault/.test(line));
  if (panic !== undefined) return fail(`guest kernel: ${panic.trim()}`);
  if (!has(lines, '@@ END')) return fail('the guest never printed its end line');
  const switched = lines.some((line) => line.startsWith('@@ T root-init '));
  const sealrootLines = sealrootMessages(lines);
  if (scenario.expect.kind === 'stop') {
    if (switched) return fail('the boot reached the root\'s init: it should have stopped before switch-root');
    const status = lines.find((line) => line.startsWith('@@ SEALROOT-EXIT '));
    if (status === undefined) return fail(`sealroot did not run to an exit: ${lines.find((line) => line.startsWith('@@ STOPPED')) ?? 'no STOPPED line'}`);
    if (status === '@@ SEALROOT-EXIT 0') return fail('sealroot boot exited 0');
    const reason = scenario.expect.reason;
    // Under systemd the failed unit must lead to the emergency target (dracut-emergency, rd.emergency=poweroff).
    if (scenario.initramfs !== 'busybox' && !lines.some((line) => line.includes('Boot has failed'))) {
      return fail('sealroot.service failed but dracut\'s emergency service never ran');
    }
    // sealroot's failure is its last message (main() prints it as it exits); an earlier info line of the same
    // step (e.g. "tpm: capped PCR 15") proves nothing.
    const last = sealrootLines.at(-1);
    if (last === undefined || !reason.test(last)) return fail(`sealroot's last message does not match ${reason}: ${last ?? 'nothing'}`);
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
    return { pass: true, reason: `verified root mounted, checks passed${method}${handedOver}` };
  }
  const { error, kernelMessage } = scenario.expect;
  if (victim === undefined || !victim.startsWith('@@ VICTIM read failed: ') || !error.test(victim)) {
    return fail(`reading the broken object did not fail with ${error}: ${victim ?? 'no line'}`);
  }
  const message = lines.find((line) => kernelMessage.test(line));
  if (message === undefined) return fail(`no kernel message matching ${kernelMessage}`);
  return { pass: true, reason: `${victim.slice(3)}; ${message.replace(/^\[[\s\d.]+\]\s*/, '')}` };
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
