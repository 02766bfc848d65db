// The firmware boot path (issue 14): OVMF + swtpm (tpm-tis), real measurements by the firmware (PCRs 0-7) and by
// the kernel's EFI stub (PCR 9: the command line, then the initramfs). The approvals of the first boot are predicted
// on the host with `sealroot predict` before that boot, from the initramfs and command line that will boot and from
// a reference boot of the same firmware (its event log, checked against the PCRs its TPM reported).
//
// With QEMU -kernel, PCR 4 is left out: QEMU writes the initramfs's size into the kernel's setup header and OVMF
// measures that patched image (shared/notes/qemu.md), so PCR 4 changes with the initramfs size and no host-side
// Authenticode hash of the vmlinuz file would match it. The ESP path (measured-systemd-boot, measured-kernel-changed)
// boots OVMF -> systemd-boot -> the kernel file from a FAT disk instead, and binds PCR 4 too.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { OVMF_QEMU_INITRD_SUFFIX } from '../../src/measure/efi-stub.ts';
import type { Disks } from './disk.ts';
import { bootConfigFor, buildGuestInitramfs, GUEST_STATE_DIR, GUEST_TCTI } from './guest.ts';
import { buildInitramfs } from './initramfs.ts';
import { CACHE, freshDir, sealrootBinary, type Kernel } from './paths.ts';
import { POLICY_KEY_PRIVATE, POLICY_KEY_PUBLIC, stateDisk } from './provision.ts';
import { judge, type Scenario, type Verdict } from './scenarios.ts';
import { startGuestSwtpm, startTcpSwtpm } from './swtpm.ts';
import { boot, kernelCommandLine, type BootResult } from './vm.ts';

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';
/** Firmware code and configuration, option ROMs, Secure Boot state, the EFI stub's initramfs and command line. */
export const MEASURED_PCRS = 'sha256:0,2,7,9';
/** The ESP path (systemd-boot loads the kernel from a file): the kernel image's PCR 4 as well. */
export const ESP_PCRS = 'sha256:0,2,4,7,9';
export const SYSTEMD_BOOT = '/usr/lib/systemd/boot/efi/systemd-bootx64.efi';

/**
 * An ESP for systemd-boot with one entry. systemd-boot (252) loads the kernel with LoadImage (the firmware measures
 * it into PCR 4), hands the initrd to the EFI stub through LINUX_EFI_INITRD_MEDIA (measured into PCR 9) and passes
 * `initrd=\initrd.img` before the entry's options (sdBootCmdline).
 */
function makeEsp(dir: string, kernelFile: string, initrd: string, options: string): string {
  freshDir(dir);
  for (const sub of ['EFI/BOOT', 'loader/entries']) fs.mkdirSync(path.join(dir, sub), { recursive: true });
  fs.copyFileSync(SYSTEMD_BOOT, path.join(dir, 'EFI/BOOT/BOOTX64.EFI'));
  fs.writeFileSync(path.join(dir, 'loader/loader.conf'), 'timeout 0\ndefault sealroot.conf\n');
  fs.writeFileSync(path.join(dir, 'loader/entries/sealroot.conf'), `title sealroot\nlinux /vmlinuz\ninitrd /initrd.img\noptions ${options}\n`);
  fs.copyFileSync(kernelFile, path.join(dir, 'vmlinuz'));
  fs.copyFileSync(initrd, path.join(dir, 'initrd.img'));
  return dir;
}

/** The load options systemd-boot passes for an entry (measured on this machine: /proc/cmdline shows the same). */
export function sdBootCmdline(options: string): string {
  return `initrd=\\initrd.img ${options}`;
}

const log = (line: string): void => void process.stderr.write(`run-tests: measured: ${line}\n`);

const measuredBootConfig = (pcrs: string): string => bootConfigFor(pcrs, 'sealroot QEMU tests, measured boot (OVMF)');
const bootConfig = measuredBootConfig(MEASURED_PCRS);

const unsealScriptFor = (pcrs: string): string => `second_unseal() { \${sealroot_cmd:-/usr/bin/sealroot} unseal --tpm ${GUEST_TCTI} --pcrs ${pcrs} --state \${tpm_state:-${GUEST_STATE_DIR}} \${policy_key:+--policy-key \$policy_key}; }\n`;
const unsealScript = unsealScriptFor(MEASURED_PCRS);

/** kernel-update: what the running (verified) system runs from /dev/vdc to approve the next boot's initramfs. */
const updateScript = `set -e
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null || true
values=$(sealroot predict --tpm ${GUEST_TCTI} --pcrs ${MEASURED_PCRS} --initrd /run/update/next-initrd.img --cmdline "$(cat /run/update/next-cmdline)")
echo "@@ UPDATE predicted $(echo $values)"
args=""
for value in $values; do args="$args --pcr-value $value"; done
sealroot approve --signing-key /run/update/signing-key.pem --pcrs ${MEASURED_PCRS} $args --state ${GUEST_STATE_DIR}
`;

/** The kernel arguments of every measured boot; the scenarios change exactly one thing from them. */
export function measuredAppend(disks: Disks, extra = ''): string {
  return `loglevel=5 composefs=${disks.digest.slice('sha256:'.length)} test.scenario=measured test.pcr=measured test.precap=0${extra}`;
}

/** What the EFI stub measures for an -append under OVMF's QEMU loader with an initrd. */
export function stubCmdline(append: string): string {
  return `${kernelCommandLine(append)}${OVMF_QEMU_INITRD_SUFFIX}`;
}

interface FirmwareReference {
  log: string;
  /** sha256 PCR values 0-9 of the reference boot, as its TPM reported them. */
  pcrs: Record<string, string>;
}

function firmwareVars(dir: string): { code: string; vars: string } {
  const vars = path.join(dir, 'ovmf-vars.fd');
  fs.copyFileSync(OVMF_VARS, vars);
  return { code: OVMF_CODE, vars };
}

const PROBE_INIT = `#!/bin/sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
mount -t securityfs securityfs /sys/kernel/security
for n in 0 1 2 3 4 5 6 7 8 9; do echo "@@ PCR $n $(cat /sys/class/tpm/tpm0/pcr-sha256/$n)"; done
cat /sys/kernel/security/tpm0/binary_bios_measurements > /log
# Numbered short lines and the log's digest: the harness reassembles them and refuses a log the console mangled.
echo "@@ LOGSUM $(sha256sum /log | cut -d' ' -f1) $(wc -c </log)"
i=0; base64 -w 64 /log | while read -r line; do echo "@@ LOG $i $line"; i=$((i + 1)); done
echo "@@ END"; poweroff -f
`;

/** Pure: the event log the probe printed, or why it cannot be trusted (a line lost or mangled on the console). */
export function probeLog(lines: readonly string[]): { log: Buffer } | { error: string } {
  const sum = lines.map((line) => /@@ LOGSUM ([0-9a-f]{64}) (\d+)/.exec(line)).find((match) => match !== null);
  if (sum === undefined || sum === null) return { error: 'no LOGSUM line' };
  const chunks: string[] = [];
  for (const line of lines) {
    const chunk = /@@ LOG (\d+) ([A-Za-z0-9+/=]+)$/.exec(line);
    if (chunk !== null) chunks[Number(chunk[1])] = chunk[2]!;
  }
  // A sparse array: some() and filter() skip its holes, so count them by index.
  const present = Array.from(chunks, (chunk) => chunk !== undefined).filter(Boolean).length;
  if (chunks.length === 0 || present !== chunks.length) return { error: `a LOG line is missing (${present} of ${chunks.length})` };
  const log = Buffer.from(chunks.join(''), 'base64');
  const digest = createHash('sha256').update(log).digest('hex');
  if (log.length !== Number(sum[2]) || digest !== sum[1]) return { error: `the log read back has ${log.length} bytes, sha256 ${digest.slice(0, 16)}…, the guest said ${sum[2]} bytes, ${sum[1]!.slice(0, 16)}…` };
  return { log };
}

/**
 * One boot of the firmware with a probe initramfs: its event log and PCRs (cached per firmware and kernel). With
 * `espKernel`, through systemd-boot from an ESP with that kernel file instead of QEMU -kernel.
 */
async function firmwareReference(kernel: Kernel, espKernel?: string, drives: { file: string; snapshot?: boolean }[] = []): Promise<FirmwareReference> {
  for (const file of [OVMF_CODE, OVMF_VARS, ...(espKernel === undefined ? [] : [SYSTEMD_BOOT])]) {
    if (!fs.existsSync(file)) throw new Error(`${file} is missing: install the ovmf and systemd-boot-efi packages (scripts/apt-packages.txt)`);
  }
  const hash = createHash('sha256').update(fs.readFileSync(OVMF_CODE)).update(fs.readFileSync(OVMF_VARS)).update(kernel.version).update(PROBE_INIT);
  if (espKernel !== undefined) hash.update(fs.readFileSync(SYSTEMD_BOOT)).update(fs.readFileSync(espKernel)).update(`${drives.length} drives`);
  const key = hash.digest('hex').slice(0, 16);
  const dir = path.join(CACHE, 'measured', `firmware-${espKernel === undefined ? '' : 'esp-'}${key}`);
  const file = path.join(dir, 'reference.json');
  if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8')) as FirmwareReference;
  // Built aside and renamed into place: another run in the same tree may be probing too.
  const work = freshDir(`${dir}.work-${process.pid}`);
  const initrd = buildInitramfs({ name: 'firmware-probe', kernel, binaries: [], modules: [], files: {}, init: PROBE_INIT });
  // The serial console may lose or mangle a character of the ~10 KiB log: the probe boot is repeated (3 times at
  // most) until the log it prints matches the digest the guest computed.
  let result: BootResult | undefined;
  let logBytes: Buffer | undefined;
  const pcrs: Record<string, string> = {};
  const failures: string[] = [];
  for (let attempt = 1; attempt <= 3 && logBytes === undefined; attempt++) {
    fs.rmSync(path.join(work, 'swtpm'), { recursive: true, force: true });
    const swtpm = await startGuestSwtpm(path.join(work, 'swtpm'));
    try {
      const esp = espKernel === undefined ? undefined : makeEsp(path.join(work, 'esp'), espKernel, initrd, 'console=ttyS0 panic=-1 loglevel=4');
      result = await boot({ kernel, initrd, drives, append: 'loglevel=4', tpmSocket: swtpm.socket, timeoutSeconds: 120, firmware: { ...firmwareVars(work), ...(esp === undefined ? {} : { esp }) } });
    } finally {
      await swtpm.stop();
    }
    fs.writeFileSync(path.join(work, `console-${attempt}.log`), result.console);
    for (const line of result.lines) {
      const pcr = /@@ PCR (\d+) ([0-9A-Fa-f]{64})/.exec(line);
      if (pcr !== null) pcrs[pcr[1]!] = pcr[2]!.toLowerCase();
    }
    const probed = probeLog(result.lines);
    if ('log' in probed && Object.keys(pcrs).length === 10) logBytes = probed.log;
    else failures.push(`attempt ${attempt}: ${'error' in probed ? probed.error : `${Object.keys(pcrs).length} PCR lines`}`);
  }
  if (logBytes === undefined) throw new Error(`the firmware probe boot gave no usable event log or PCRs (${failures.join('; ')}; consoles in ${work})`);
  fs.writeFileSync(path.join(work, 'binary_bios_measurements'), logBytes);
  const reference = { log: path.join(dir, 'binary_bios_measurements'), pcrs };
  fs.writeFileSync(path.join(work, 'reference.json'), JSON.stringify(reference, null, 2));
  fs.rmSync(path.join(work, 'swtpm'), { recursive: true, force: true });
  fs.rmSync(path.join(work, 'esp'), { recursive: true, force: true });
  try {
    fs.renameSync(work, dir);
  } catch (error) {
    // Another run got there first: its reference is as good.
    if (!fs.existsSync(file)) throw error;
    fs.rmSync(work, { recursive: true, force: true });
  }
  return reference;
}

function sealroot(args: string[]): string {
  const result = spawnSync(sealrootBinary(), args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`sealroot ${args[0]} failed (exit ${result.status}): ${`${result.stdout}${result.stderr}`.trim().split('\n').at(-1)}`);
  return result.stdout;
}

/** `sealroot predict` on the host, from the reference boot's log (checked against its PCRs): N=<hex> lines. */
function predictOnHost(reference: FirmwareReference, initrd: string, append: string): string[] {
  const current = Object.entries(reference.pcrs).flatMap(([pcr, hex]) => ['--current-pcr', `${pcr}=${hex}`]);
  return sealroot(['predict', '--pcrs', MEASURED_PCRS, '--event-log', reference.log, ...current, '--initrd', initrd, '--cmdline', stubCmdline(append)])
    .trim().split('\n');
}

/**
 * `--image FILE` for a provision that asks for the image (issue 11's trusted set records its size), taken out of
 * the base disk; nothing for the older provision.
 */
function imageArgs(disks: Disks, dir: string): string[] {
  if (!sealroot(['provision', '--help']).includes('--image FILE')) return [];
  const image = path.join(dir, 'image.cfs');
  execFileSync('debugfs', ['-R', `dump /composefs/images/${disks.digest.slice('sha256:'.length)} ${image}`, disks.files.base], { stdio: 'ignore' });
  return ['--image', image];
}

export interface MeasuredSetup {
  reference: FirmwareReference;
  /** The initramfs of the first boot and kernel-update's new one (one more file in it). */
  initrd: string;
  nextInitrd: string;
  /** swtpm state with the trusted digest, and the sealroot state dir with the host-predicted approvals. */
  swtpm: string;
  state: string;
  /** The update disk of kernel-update: the new initramfs, its command line, the test signing key, update.sh. */
  updateDir: string;
}

let prepared: Promise<MeasuredSetup> | undefined;

const pcrValueArgs = (values: readonly string[]): string[] => values.flatMap((value) => ['--pcr-value', value]);

/**
 * A new swtpm (state in DIR/swtpm) provisioned with the disks' image, its read approval signed for `values` (the
 * PCRs predicted on the host) into DIR/sealroot.
 */
async function provisionPredicted(dir: string, disks: Disks, pcrs: string, values: readonly string[]): Promise<{ swtpm: string; state: string }> {
  const swtpmDir = path.join(dir, 'swtpm');
  const state = path.join(dir, 'sealroot');
  fs.mkdirSync(state, { recursive: true });
  const swtpm = await startTcpSwtpm(swtpmDir);
  try {
    sealroot(['provision', '--tpm', swtpm.tcti!, '--digest', disks.digest, '--pcrs', pcrs, '--state', state,
      '--policy-key', POLICY_KEY_PUBLIC, '--signing-key', POLICY_KEY_PRIVATE, ...pcrValueArgs(values), ...imageArgs(disks, dir)]);
  } finally {
    await swtpm.stop();
  }
  return { swtpm: swtpmDir, state };
}

async function prepare(kernel: Kernel, disks: Disks, workDir: string): Promise<MeasuredSetup> {
  const reference = await firmwareReference(kernel);
  log(`firmware reference boot: PCR 0 ${reference.pcrs['0']!.slice(0, 16)}…, PCR 7 ${reference.pcrs['7']!.slice(0, 16)}…`);
  const files = { 'etc/sealroot-test/unseal.sh': unsealScript };
  const initrd = buildGuestInitramfs(kernel, { name: 'measured', bootConfig, files });
  const nextInitrd = buildGuestInitramfs(kernel, { name: 'measured-next', bootConfig, files: { ...files, 'etc/sealroot-test/generation': '2\n' } });
  const dir = freshDir(path.join(workDir, 'measured-setup'));
  // Approvals for the first boot of each command line used, predicted here, before any of these boots.
  const plain = predictOnHost(reference, initrd, measuredAppend(disks));
  const update = predictOnHost(reference, initrd, measuredAppend(disks, ' test.update=1'));
  log(`predicted on the host: ${plain.join(' ')}`);
  const { swtpm: swtpmDir, state } = await provisionPredicted(dir, disks, MEASURED_PCRS, plain);
  sealroot(['approve', '--signing-key', POLICY_KEY_PRIVATE, '--pcrs', MEASURED_PCRS, '--state', state, ...pcrValueArgs(update)]);
  const updateDir = path.join(dir, 'update');
  fs.mkdirSync(updateDir);
  fs.copyFileSync(nextInitrd, path.join(updateDir, 'next-initrd.img'));
  fs.writeFileSync(path.join(updateDir, 'next-cmdline'), stubCmdline(measuredAppend(disks)));
  fs.copyFileSync(POLICY_KEY_PRIVATE, path.join(updateDir, 'signing-key.pem'));
  fs.writeFileSync(path.join(updateDir, 'update.sh'), updateScript);
  return { reference, initrd, nextInitrd, swtpm: swtpmDir, state, updateDir };
}

/** An ext4 image of a directory, sized for its content. */
function dirDisk(dir: string, out: string): string {
  const bytes = fs.readdirSync(dir).reduce((sum, name) => sum + fs.statSync(path.join(dir, name)).size, 0);
  execFileSync('mkfs.ext4', ['-q', '-F', '-E', 'root_owner=0:0', '-d', dir, out, `${Math.ceil(bytes / (1 << 20)) + 16}M`]);
  return out;
}

export type MeasuredCase = 'boot' | 'initrd-changed' | 'cmdline-changed' | 'kernel-update' | 'systemd-boot' | 'kernel-changed';

interface EspSetup {
  /** The kernel the reference boot ran: the test kernel with bytes appended (another Authenticode hash). */
  otherKernel: string;
  initrd: string;
  options: string;
  swtpm: string;
  state: string;
}

let preparedEsp: Promise<EspSetup> | undefined;

/**
 * The ESP path: the reference boot runs ANOTHER kernel (the test kernel with 8 bytes appended, which the firmware
 * loads and hashes differently), so the host's prediction of PCR 4 for the real kernel (predict --kernel: the last
 * boot application replaced by the file's Authenticode hash) can only match if that hash is computed right.
 */
async function prepareEsp(kernel: Kernel, disks: Disks, workDir: string): Promise<EspSetup> {
  const dir = freshDir(path.join(workDir, 'measured-esp-setup'));
  const otherKernel = path.join(CACHE, 'measured', `vmlinuz-plus-8-${kernel.version}`);
  if (!fs.existsSync(otherKernel)) {
    fs.mkdirSync(path.dirname(otherKernel), { recursive: true });
    fs.writeFileSync(`${otherKernel}.tmp-${process.pid}`, Buffer.concat([fs.readFileSync(kernel.vmlinuz), Buffer.alloc(8)]));
    fs.renameSync(`${otherKernel}.tmp-${process.pid}`, otherKernel);
  }
  fs.mkdirSync(path.join(dir, 'empty'));
  // The same disks in front of the ESP as the scenarios have: OVMF logs into PCR 4 each boot option it tries
  // ("Calling EFI Application from Boot Option"), so the boot order is part of PCR 4 (measured: two disks without an
  // ESP before it gave another PCR 4).
  const reference = await firmwareReference(kernel, otherKernel, [{ file: disks.files.base, snapshot: true }, { file: stateDisk(path.join(dir, 'empty'), path.join(dir, 'empty.img')) }]);
  log(`systemd-boot reference boot (another kernel): PCR 4 ${reference.pcrs['4']!.slice(0, 16)}…`);
  const initrd = buildGuestInitramfs(kernel, { name: 'measured-esp', bootConfig: measuredBootConfig(ESP_PCRS), files: { 'etc/sealroot-test/unseal.sh': unsealScriptFor(ESP_PCRS) } });
  const options = kernelCommandLine(measuredAppend(disks));
  const current = Object.entries(reference.pcrs).flatMap(([pcr, hex]) => ['--current-pcr', `${pcr}=${hex}`]);
  const values = sealroot(['predict', '--pcrs', ESP_PCRS, '--event-log', reference.log, ...current, '--kernel', kernel.vmlinuz, '--initrd', initrd,
    '--cmdline', sdBootCmdline(options)]).trim().split('\n');
  log(`predicted on the host (systemd-boot): ${values.join(' ')}`);
  const { swtpm, state } = await provisionPredicted(dir, disks, ESP_PCRS, values);
  return { otherKernel, initrd, options, swtpm, state };
}

/** measured-systemd-boot (the real kernel: verified root) and measured-kernel-changed (the other kernel: refused). */
async function runEspScenario(kernel: Kernel, disks: Disks, scenario: Scenario, measured: MeasuredCase, dir: string, workDir: string): Promise<MeasuredRun> {
  preparedEsp ??= prepareEsp(kernel, disks, workDir);
  const setup = await preparedEsp;
  const swtpmDir = path.join(dir, 'swtpm');
  fs.cpSync(setup.swtpm, swtpmDir, { recursive: true });
  const esp = makeEsp(path.join(dir, 'esp'), measured === 'kernel-changed' ? setup.otherKernel : kernel.vmlinuz, setup.initrd, setup.options);
  const drives = [{ file: disks.files.base, snapshot: true }, { file: stateDisk(setup.state, path.join(dir, 'state.img')) }];
  const swtpm = await startGuestSwtpm(swtpmDir);
  let result: BootResult;
  try {
    result = await boot({ kernel, initrd: setup.initrd, drives, append: '', tpmSocket: swtpm.socket, timeoutSeconds: 180, firmware: { ...firmwareVars(dir), esp } });
  } finally {
    await swtpm.stop();
  }
  const console = path.join(dir, 'console.log');
  fs.writeFileSync(console, result.console);
  fs.rmSync(esp, { recursive: true, force: true });
  return { verdict: judge(scenario, result.lines, result.timedOut, disks.victimMd5), result, console };
}

export interface MeasuredRun {
  verdict: Verdict;
  result: BootResult;
  console: string;
}

/** Runs one measured scenario: one OVMF boot, or two for kernel-update. */
export async function runMeasuredScenario(kernel: Kernel, disks: Disks, scenario: Scenario, measured: MeasuredCase, dir: string, workDir: string): Promise<MeasuredRun> {
  if (measured === 'systemd-boot' || measured === 'kernel-changed') return runEspScenario(kernel, disks, scenario, measured, dir, workDir);
  prepared ??= prepare(kernel, disks, workDir);
  const setup = await prepared;
  const swtpmDir = path.join(dir, 'swtpm');
  fs.cpSync(setup.swtpm, swtpmDir, { recursive: true });
  const stateImage = stateDisk(setup.state, path.join(dir, 'state.img'));
  const firmware = firmwareVars(dir);
  let initrd = setup.initrd;
  let append = measuredAppend(disks);
  if (measured === 'initrd-changed') {
    // One zero byte more: the kernel skips zero padding between initramfs archives, so it still boots.
    initrd = path.join(dir, 'initrd-plus-one-byte.img');
    fs.writeFileSync(initrd, Buffer.concat([fs.readFileSync(setup.initrd), Buffer.alloc(1)]));
  }
  if (measured === 'cmdline-changed') append = measuredAppend(disks, ' init=/bin/sh');
  if (measured === 'kernel-update') append = measuredAppend(disks, ' test.update=1');
  const drives = [{ file: disks.files.base, snapshot: true }, { file: stateImage }];
  if (measured === 'kernel-update') drives.push({ file: dirDisk(setup.updateDir, path.join(dir, 'update.img')) });

  const once = async (name: string, bootInitrd: string, bootAppend: string, bootDrives: typeof drives, expect: Scenario['expect']): Promise<MeasuredRun> => {
    const swtpm = await startGuestSwtpm(swtpmDir);
    let result: BootResult;
    try {
      result = await boot({ kernel, initrd: bootInitrd, drives: bootDrives, append: bootAppend, tpmSocket: swtpm.socket, timeoutSeconds: 180, firmware });
    } finally {
      await swtpm.stop();
    }
    const console = path.join(dir, `${name}.console.log`);
    fs.writeFileSync(console, result.console);
    return { verdict: judge({ ...scenario, expect }, result.lines, result.timedOut, disks.victimMd5), result, console };
  };

  const first = await once('console', initrd, append, drives, measured === 'kernel-update' ? { kind: 'boot' } : scenario.expect);
  if (measured !== 'kernel-update' || !first.verdict.pass) return first;
  if (!first.result.lines.includes('@@ UPDATE approved')) {
    const why = first.result.lines.filter((line) => line.startsWith('@@ UPDATE ')).at(-1);
    return { ...first, verdict: { pass: false, reason: `the running system did not approve the new initramfs: ${why ?? 'no UPDATE line'}` } };
  }
  // The new initramfs with the plain command line, the same TPM (not re-provisioned) and the state the first boot
  // wrote its approvals into.
  const second = await once('console-after-update', setup.nextInitrd, measuredAppend(disks), [drives[0]!, drives[1]!], scenario.expect);
  const predicted = first.result.lines.find((line) => line.startsWith('@@ UPDATE predicted'))?.slice(3) ?? '';
  if (!second.verdict.pass) return { ...second, verdict: { pass: false, reason: `after the update: ${second.verdict.reason}` } };
  // The second boot's PCR 9 (sealroot logs the PCRs when the second unseal is refused) is the one predicted.
  const pcr9 = / 9=([0-9a-f]{64})/.exec(predicted)?.[1];
  if (pcr9 === undefined || !second.result.lines.some((line) => line.includes(`sha256:9=${pcr9}`))) {
    return { ...second, verdict: { pass: false, reason: `the rebooted system's PCR 9 is not the predicted ${pcr9 ?? '(none)'}` } };
  }
  return { ...second, verdict: { pass: true, reason: `${predicted}; rebooted into the new initramfs, PCR 9 as predicted: ${second.verdict.reason}` } };
}

