// The QEMU tier's pure parts: the raw PCR_Extend command the guest sends, how a boot is judged from its console,
// and the boot timeline. (The boots themselves run in qemu/run-tests.)
import { createHash } from 'node:crypto';
import { test } from 'uvu';
import { probeLog } from '../../qemu/lib/measured.ts';
import * as assert from 'uvu/assert';
import { kernelArgs } from '../../qemu/run-tests.ts';
import type { Disks } from '../../qemu/lib/disk.ts';
import { judge, SCENARIOS, sealrootMessages } from '../../qemu/lib/scenarios.ts';
import { milestones } from '../../qemu/lib/timeline.ts';
import { pcrExtendCommand, predictPcr } from '../../qemu/lib/tpm-commands.ts';

const sha256 = (data: Buffer): Buffer => createHash('sha256').update(data).digest();
const scenario = (name: string) => SCENARIOS.find((candidate) => candidate.name === name)!;
const MD5 = 'cf4dacb6a28ad70e0d3ecd56b746e687';

test('pcrExtendCommand: TPM2_PCR_Extend with one password session and one SHA-256 digest (Part 3, 22.2)', () => {
  const digest = Buffer.alloc(32, 0xab);
  const command = pcrExtendCommand(9, digest);
  assert.is(command.length, 65);
  assert.is(command.subarray(0, 14).toString('hex'), '8002' + '00000041' + '00000182' + '00000009');
  // authorizationSize 9: TPM_RS_PW, empty nonce, attributes 0, empty hmac.
  assert.is(command.subarray(14, 27).toString('hex'), '00000009' + '40000009' + '0000' + '00' + '0000');
  assert.is(command.subarray(27, 33).toString('hex'), '00000001' + '000b');
  assert.equal(command.subarray(33), digest);
  assert.throws(() => pcrExtendCommand(9, Buffer.alloc(20)), /32 bytes/);
});

test('predictPcr: extend from zero, in order', () => {
  const a = Buffer.alloc(32, 1);
  const b = Buffer.alloc(32, 2);
  const once = sha256(Buffer.concat([Buffer.alloc(32), a]));
  assert.equal(predictPcr([a]), once);
  assert.equal(predictPcr([a, b]), sha256(Buffer.concat([once, b])));
  assert.not.equal(predictPcr([b, a]), predictPcr([a, b]));
});

const KERNEL_VERITY = "sealroot: verify-image: /sysroot/ostree/deploy/sample/deploy/c0.0/.ostree.cfs: kernel fs-verity (the source's kernel fs-verity digest matches: the kernel verifies every block read)";
const USERSPACE_VERITY = 'sealroot: verify-image: /sysroot/composefs/images/ed8c: userspace fs-verity (the source file has no fs-verity)';
const BOOTED = [
  '@@ T init 7.5', '@@ T sealroot-start 8.0', '@@ TPM-UNIT dev-tpmrm0.device active', KERNEL_VERITY, 'sealroot: step times (ms): process-start 1000, trusted-digest 500, cap-pcr 50, verify-image 200, validate-image 100, mount-composefs 100, prepare-root 50',
  '@@ T sealroot-end 10.5', '@@ SEALROOT-EXIT 0', '@@ CHECK second-unseal refused', '@@ T switch-root 10.6', '@@ T root-init 11.0',
  '@@ CHECK root-overlay-verity ok', '@@ CHECK hello ok', `@@ VICTIM read ok ${MD5}`, '@@ PCR15 C34A6722D68D', '@@ END',
];

test('judge: a verified boot passes; each missing proof fails it', () => {
  assert.ok(judge(scenario('boot-ostree'), BOOTED, false, MD5).pass);
  assert.not.ok(judge(scenario('boot-ostree'), BOOTED, true, MD5).pass, 'a timeout never passes');
  for (const removed of ['@@ CHECK second-unseal refused', '@@ CHECK hello ok', '@@ END', '@@ SEALROOT-EXIT 0', '@@ CHECK root-overlay-verity ok']) {
    assert.not.ok(judge(scenario('boot-ostree'), BOOTED.filter((line) => line !== removed), false, MD5).pass, `passed without ${removed}`);
  }
  assert.not.ok(judge(scenario('boot-ostree'), BOOTED, false, 'f'.repeat(32)).pass, 'wrong content passed');
  assert.not.ok(judge(scenario('boot-ostree'), BOOTED.map((l) => (l.startsWith('@@ PCR15') ? '@@ PCR15 0000' : l)), false, MD5).pass, 'an uncapped PCR passed');
  assert.not.ok(judge(scenario('boot-ostree'), [...BOOTED, '[   12.0] Kernel panic - not syncing: x'], false, MD5).pass);
});

test('judge: a boot must log the image verification path its scenario expects', () => {
  const verdict = judge(scenario('boot-ostree'), BOOTED, false, MD5);
  assert.ok(verdict.pass, verdict.reason);
  assert.ok(verdict.reason.includes(KERNEL_VERITY), 'the verdict names the path taken');
  const userspace = BOOTED.map((line) => (line === KERNEL_VERITY ? USERSPACE_VERITY : line));
  assert.match(judge(scenario('boot-ostree'), userspace, false, MD5).reason, /not verified by kernel fs-verity/);
  assert.not.ok(judge(scenario('boot-ostree'), BOOTED.filter((line) => line !== KERNEL_VERITY), false, MD5).pass, 'no verify-image line');
  // Through the journal, as under dracut's systemd flow.
  assert.ok(judge(scenario('boot-ok'), userspace.map((line) => (line === USERSPACE_VERITY ? `[   31.0] sealroot[224]: ${line}` : line)), false, MD5).pass);
  assert.not.ok(judge(scenario('boot-ok'), BOOTED, false, MD5).pass, 'boot-ok\'s image has no fs-verity: a kernel path there is wrong');
  // A reason that mentions "kernel fs-verity" does not make a userspace line a kernel one.
  const lookalike = "sealroot: verify-image: /x/.ostree.cfs: userspace fs-verity (the source's kernel fs-verity digest is sha256:aa, not the expected one)";
  assert.not.ok(judge(scenario('boot-ostree'), BOOTED.map((line) => (line === KERNEL_VERITY ? lookalike : line)), false, MD5).pass);
});

const STOPPED = ['@@ T sealroot-start 8.0', '@@ TPM-UNIT dev-tpmrm0.device active', 'sealroot: tpm: capped PCR 15 (sha256)',
  '[   9.1] sealroot[224]: sealroot: verify-image: digest mismatch: the image is sha256:aa, the trusted digest is sha256:bb',
  '@@ SEALROOT-EXIT 1', '@@ STOPPED sealroot boot exited 1', '@@ END'];

test('judge: a refused boot passes only with sealroot\'s reason and no switch-root', () => {
  const verdict = judge(scenario('forged-digest'), STOPPED, false, MD5);
  assert.ok(verdict.pass, verdict.reason);
  assert.match(verdict.reason, /^sealroot: verify-image: digest mismatch/);
  assert.not.ok(judge(scenario('pcr-mismatch'), STOPPED, false, MD5).pass, 'a verify-image failure (after a tpm info line) is not the TPM refusal');
  assert.not.ok(judge(scenario('forged-digest'), [...STOPPED, '@@ T root-init 12.0'], false, MD5).pass, 'reached the root');
  assert.not.ok(judge(scenario('forged-digest'), STOPPED, true, MD5).pass, 'timed out');
  assert.not.ok(judge(scenario('forged-digest'), STOPPED.map((l) => (l === '@@ SEALROOT-EXIT 1' ? '@@ SEALROOT-EXIT 0' : l)), false, MD5).pass);
  // Through dracut, the machine must power off, with no emergency shell on the way (dracut/90sealroot).
  const POWER_DOWN = '[   10.5] reboot: Power down';
  assert.not.ok(judge(scenario('tampered-image'), STOPPED, false, MD5).pass, 'no power-off');
  assert.ok(judge(scenario('tampered-image'), [...STOPPED, POWER_DOWN], false, MD5).pass);
  assert.not.ok(judge(scenario('tampered-image'), [...STOPPED, 'Warning: Boot has failed. To debug this issue add "rd.shell rd.debug"', POWER_DOWN], false, MD5).pass, 'the emergency path ran');
  assert.not.ok(judge(scenario('tampered-image'), [...STOPPED, 'Entering emergency mode. Exit the shell to continue.', POWER_DOWN], false, MD5).pass, 'a shell');
});

test('judge: start-timeout needs the interruption as the last line and the failure recorded in the TPM', () => {
  const lines = ['@@ T sealroot-start 20.7', '@@ TPM-UNIT dev-tpmrm0.device active',
    '[   33.9] sealroot[235]: sealroot: received SIGTERM: stopping the boot through its failure path (undo, PCR cap, boot-failed event)',
    '[   34.0] sealroot[235]: sealroot: tpm: capped PCR 15 (sha256)', '[   34.1] sealroot[235]: sealroot: tpm: boot failed: recorded in PCR 15 (sha256)',
    '[   34.1] sealroot[235]: sealroot: trusted-digest: interrupted by SIGTERM', '@@ SEALROOT-EXIT 143', '@@ END', '[   34.6] reboot: Power down'];
  const timeout = scenario('start-timeout');
  assert.ok(judge(timeout, lines, false, MD5).pass, judge(timeout, lines, false, MD5).reason);
  assert.match(judge(timeout, lines.filter((l) => !l.includes('boot failed: recorded')), false, MD5).reason, /never logged .*boot failed: recorded/);
  assert.not.ok(judge(timeout, lines.filter((l) => !l.includes('interrupted by')), false, MD5).pass, 'the last line is not the interruption');
});

test('judge: hostile-state stops with the FIFO refusal, well within the unit timeout, in both dracut flows', () => {
  const FIFO = '[   9.1] sealroot[224]: sealroot: tpm: cannot read the trusted set (/sysroot/sealroot/tpm/approvals.json): unusable state file: is a FIFO, not a regular file';
  const lines = ['@@ T sealroot-start 8.0', '@@ TPM-UNIT tpm2.target active', FIFO, '@@ SEALROOT-EXIT 1', '@@ END', '[   10.5] reboot: Power down'];
  const hostile = scenario('hostile-state');
  assert.ok(judge(hostile, lines, false, MD5).pass, judge(hostile, lines, false, MD5).reason);
  assert.match(judge(hostile, lines.map((l) => l.replace('10.5', '60.0')), false, MD5).reason, /the stop took 52\.0 s .*limit 30 s/);
  assert.not.ok(judge(hostile, lines.filter((l) => !l.includes('Power down')), false, MD5).pass, 'no power-off');
  // Issue 16: under systemd, sealroot.service must have been ordered after an active TPM unit.
  assert.match(judge(hostile, lines.map((l) => (l.startsWith('@@ TPM-UNIT') ? '@@ TPM-UNIT none ' : l)), false, MD5).reason, /not ordered after an active TPM unit/);
  assert.not.ok(judge(hostile, lines.map((l) => (l.startsWith('@@ TPM-UNIT') ? '@@ TPM-UNIT dev-tpmrm0.device activating' : l)), false, MD5).pass);
  // The shell flow: no ExecStopPost status and no END line, the hook's power-off ends the console.
  const shellFlow = { ...hostile, initramfs: 'dracut-shell' as const };
  assert.ok(judge(shellFlow, ['@@ T sealroot-start 8.0', FIFO.replace('sealroot[224]: ', ''), '[   9.3] sysrq: Power Off', '[   9.4] reboot: Power down'], false, MD5).pass);
  assert.not.ok(judge(shellFlow, ['@@ T sealroot-start 8.0', FIFO, 'dracut: FATAL: sealroot failed', 'Entering emergency mode. Exit the shell to continue.', '[   9.4] reboot: Power down'], false, MD5).pass);
  // The kernel's power-off message cut into the hook's own line on the console (seen in CI): its stamp still counts.
  const interleaved = ['@@ T sealroot-start 13.90', FIFO.replace('sealroot[224]: ', ''),
    'dracut Warning: sealroot: the root could not be verified; refusing to boot (powe[   17.553396] sysrq: Power Off', 'roff)'];
  assert.ok(judge(shellFlow, interleaved, false, MD5).pass, judge(shellFlow, interleaved, false, MD5).reason);
  assert.match(judge(shellFlow, interleaved.map((l) => l.replace('17.553396', '58.0')), false, MD5).reason, /the stop took 44\.1 s .*limit 30 s/);
});

test('judge: object cases need the read error and the kernel\'s reason', () => {
  const eio = BOOTED.map((line) => (line.startsWith('@@ VICTIM') ? "@@ VICTIM read failed: md5sum: can't open 'x': Input/output error" : line));
  const message = "[   16.2] overlayfs: lower file '66c4' has no fs-verity digest";
  assert.ok(judge(scenario('object-without-verity'), [...eio, message], false, MD5).pass);
  assert.not.ok(judge(scenario('object-without-verity'), eio, false, MD5).pass, 'no kernel message');
  assert.not.ok(judge(scenario('tampered-object'), [...eio, message], false, MD5).pass, 'wrong kernel message');
  assert.not.ok(judge(scenario('object-without-verity'), [...BOOTED, message], false, MD5).pass, 'the read succeeded');
});

// boot-pid1: the busybox /init execs sealroot as PID 1, which switches root itself (console of a real boot, shortened).
const OVERLAY_ROOT = 'composefs / overlay ro,relatime,lowerdir+=/run/sealroot/erofs.973cxG,datadir+=/sysroot/composefs/objects,redirect_dir=on,metacopy=on,verity=require 0 0';
const REFUSED = 'sealroot: tpm: cannot read the trusted digest: no read approval matches the current PCR values (policy dabd; 1 read approvals in the state directory)';
const PID1 = [
  '@@ T init 6.97', '@@ PCRS trusted', '@@ T sealroot-start 8.91', '@@ EXEC sealroot as PID 1',
  'sealroot: physical root /dev/vda (ext4, rw) mounted at /sysroot', USERSPACE_VERITY, 'sealroot: tpm: capped PCR 15 (sha1, sha256, sha384, sha512)',
  '[   17.9] sealroot: freed the initramfs: 327 entries removed', 'sealroot: freed the initramfs: 327 entries removed',
  'sealroot: switching root: exec /bin/sh', `@@ HANDOVER pid=1 root=${OVERLAY_ROOT}`, '@@ KIT sealroot 0.1.0',
  'sealroot: tpm: current PCR values: sha256:9=c1c6 sha256:12=2868 sha256:15=c34a', REFUSED, '@@ CHECK second-unseal refused',
  '@@ T root-init 19.19', `@@ ROOTMOUNT ${OVERLAY_ROOT}`, '@@ CHECK root-overlay-verity ok', '@@ CHECK hello ok',
  `@@ VICTIM read ok ${MD5}`, '@@ PCR15 C34A6722D68D', '@@ END',
];

test('judge: boot-pid1 needs sealroot\'s own hand-over as PID 1 and the TPM\'s refusal of the second unseal', () => {
  const pid1 = scenario('boot-pid1');
  const verdict = judge(pid1, PID1, false, MD5);
  assert.ok(verdict.pass, verdict.reason);
  assert.match(verdict.reason, /freed the initramfs: 327 entries removed; init= ran as PID 1/);
  const without = (removed: string): string[] => PID1.filter((line) => line !== removed);
  for (const removed of ['@@ EXEC sealroot as PID 1', 'sealroot: switching root: exec /bin/sh', REFUSED, '@@ CHECK second-unseal refused', '@@ T root-init 19.19', '@@ CHECK hello ok']) {
    assert.not.ok(judge(pid1, without(removed), false, MD5).pass, `passed without ${removed}`);
  }
  const unfreed = PID1.filter((line) => !line.includes('freed the initramfs'));
  assert.match(judge(pid1, unfreed, false, MD5).reason, /did not free the initramfs/);
  // busybox got control back (sealroot exited, or busybox switch_root ran): not sealroot's hand-over.
  assert.match(judge(pid1, [...PID1.slice(0, 10), '@@ SEALROOT-EXIT 0', ...PID1.slice(10)], false, MD5).reason, /busybox \/init got control back/);
  assert.match(judge(pid1, [...PID1.slice(0, 10), '@@ T switch-root 18.0', ...PID1.slice(10)], false, MD5).reason, /busybox \/init got control back/);
  assert.not.ok(judge(pid1, PID1.map((line) => line.replace('@@ EXEC sealroot as PID 1', '@@ EXEC sealroot as PID 97')), false, MD5).pass, 'not PID 1');
  assert.not.ok(judge(pid1, PID1.map((line) => line.replace('@@ HANDOVER pid=1 ', '@@ HANDOVER pid=2 ')), false, MD5).pass, 'init= not PID 1');
  assert.not.ok(judge(pid1, PID1.map((line) => (line.startsWith('@@ HANDOVER') ? '@@ HANDOVER pid=1 root=/dev/vda / ext4 rw 0 0' : line)), false, MD5).pass, 'init= on the physical root');
  // A second unseal that failed for any other reason (the kit could not run, a file missing) proves nothing.
  const broken = PID1.map((line) => (line === REFUSED ? 'sealroot: tpm: cannot read the trusted digest: cannot read the policy key /x.pem: ENOENT' : line));
  assert.match(judge(pid1, broken, false, MD5).reason, /not refused by the TPM policy/);
  // A refusal logged before the hand-over (sealroot's own boot) does not count for the check after it.
  const early = [...PID1.slice(0, 7), REFUSED, ...PID1.slice(7).filter((line) => line !== REFUSED)];
  assert.not.ok(judge(pid1, early, false, MD5).pass, 'a refusal before the hand-over counted');
  // The busybox flow's console does not pass as a PID 1 hand-over, and the PID 1 console does not pass boot-ostree.
  assert.not.ok(judge(pid1, BOOTED.map((line) => (line === KERNEL_VERITY ? USERSPACE_VERITY : line)), false, MD5).pass);
  assert.not.ok(judge(scenario('boot-ostree'), PID1, false, MD5).pass);
});

test('kernelArgs: only boot-pid1 gives sealroot root= and init= (with its argument after --, as the last words)', () => {
  const disks = { digest: 'sha256:ab', forgedDigest: 'sha256:cd' } as Disks;
  const pid1 = kernelArgs(scenario('boot-pid1'), disks, 'busybox');
  assert.match(pid1, / test\.handover=sealroot root=\/dev\/vda rootfstype=ext4 rw init=\/bin\/sh -- \/run\/sealroot-test\/after-switch$/);
  assert.match(pid1, /^loglevel=5 composefs=ab /);
  for (const other of SCENARIOS.filter((candidate) => candidate.name !== 'boot-pid1')) {
    assert.not.match(kernelArgs(other, disks, other.initramfs), /init=|handover|--/, other.name);
  }
});

test('sealrootMessages: stderr, kmsg and journal forms, two writers on one line', () => {
  const lines = ['sealroot: a: one', '[   14.5] sealroot: b: two', '[   34.1] sealroot[220]: sealroot: c: three',
    'sealroot: d: four[   14.9] sealroot: d: four', 'unrelated [ 1.0] line'];
  assert.equal(sealrootMessages(lines), ['sealroot: a: one', 'sealroot: b: two', 'sealroot: c: three', 'sealroot: d: four', 'sealroot: d: four']);
});

test('milestones: sealroot\'s steps placed back from its exit, main() after its own process-start', () => {
  const { milestones: list, missing } = milestones(['[    4.2] Run /init as init process', ...BOOTED]);
  assert.equal(missing, []);
  const at = Object.fromEntries(list.map(({ label, at }) => [label, Math.round(at * 1000) / 1000]));
  assert.is(at['initramfs init runs'], 4.2);
  assert.is(at['sealroot start'], 8);
  // 10.5 - 2.0 s of steps = 8.5; + 1.0 process start
  assert.is(at['sealroot main() (process started)'], 9.5);
  assert.is(at['digest unsealed (PCR capped)'], 10.05);
  assert.is(at['image verified (sealed memfd, EROFS validated)'], 10.35);
  assert.is(at['root mounted (composefs + /etc, /var)'], 10.5);
  assert.is(at['switch-root'], 10.6);
  assert.is(at['root init runs'], 11);
});

test('measured probe: the event log is taken only when its numbered lines reassemble to the digest the guest printed', () => {
  const log = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37) & 0xff));
  const sum = `@@ LOGSUM ${createHash('sha256').update(log).digest('hex')} ${log.length}`;
  const chunks = (log.toString('base64').match(/.{1,64}/g) ?? []).map((chunk, i) => `@@ LOG ${i} ${chunk}`);
  const good = probeLog(['noise', sum, ...chunks, '@@ END']);
  assert.ok('log' in good && good.log.equals(log), JSON.stringify(good));
  // One character of one line changed on the console (the base64 still parses): the digest tells.
  const mangled = chunks.map((line, i) => (i === 2 ? `${line.slice(0, -1)}${line.endsWith('A') ? 'B' : 'A'}` : line));
  assert.match((probeLog([sum, ...mangled]) as { error: string }).error, /the guest said 300 bytes/);
  assert.match((probeLog([sum, ...chunks.filter((_, i) => i !== 1)]) as { error: string }).error, /a LOG line is missing/);
  assert.match((probeLog(chunks) as { error: string }).error, /no LOGSUM line/);
});

test.run();
