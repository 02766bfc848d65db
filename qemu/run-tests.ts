// qemu/run-tests: boots every scenario of issue 7 in QEMU (TCG) with swtpm as the guest's TPM, prints
// `PASS <name>` or `FAIL <name>: <reason>` (with the console lines that matter) and a final `N passed, N failed`.
// Exit status 1 when anything failed, including the setup (a missing tool or kernel fails every scenario loudly).
// Usage: qemu/run-tests [--jobs N] [SCENARIO...]   (QEMU_TEST_JOBS=N: parallel boots, default 2)
// Consoles are kept in .cache/qemu/runs/<run>/<scenario>/console.log (runs/latest: the newest run).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { editedDisk } from './lib/disk-edit.ts';
import { stallTpm } from './lib/tpm-stall.ts';
import { buildDisks, type Disks } from './lib/disk.ts';
import { buildDracutInitramfs, dracutModulesKey } from './lib/dracut.ts';
import { BOOT_CONFIG, buildGuestInitramfs } from './lib/guest.ts';
import { CACHE, fetchKernel, freshDir, pruneCache, requireHostTools, sealrootBinary, type Kernel } from './lib/paths.ts';
import { runMeasuredScenario } from './lib/measured.ts';
import { ostreeDisks, runOstreeScenario } from './lib/ostree.ts';
import { provisionTpms, stateDisk, type Provisioned } from './lib/provision.ts';
import { EMBEDDED_IMAGE, judge, relevantLines, SCENARIOS, type Initramfs, type Scenario, type Unswappable, type Verdict } from './lib/scenarios.ts';
import { runLifecycleScenario } from './lib/lifecycle-run.ts';
import { startGuestSwtpm } from './lib/swtpm.ts';
import { boot, QEMU, type BootResult } from './lib/vm.ts';

const HOST_TOOLS = [QEMU, 'swtpm', 'tpm2_pcrextend', 'mkfs.ext4', 'fsverity', 'zstd', 'cpio', 'modprobe', 'depmod', 'xz', 'busybox', 'dracut', 'timeout', 'apt-get', 'dpkg-deb'];

export interface Setup {
  kernel: Kernel;
  disks: Disks;
  provisioned: Provisioned;
  initramfs: Record<Initramfs, string>;
}

const log = (line: string): void => void process.stderr.write(`run-tests: ${line}\n`);

/** standIn false: only measured scenarios (qemu/lib/measured.ts, their own TPM and initramfs) run; the stand-in TPMs are not provisioned. */
export async function setUp(needDracut: boolean, needShellFlow = needDracut, standIn = true): Promise<Setup> {
  requireHostTools(HOST_TOOLS);
  log(`sealroot: ${sealrootBinary()}`);
  let started = performance.now();
  const step = (what: string): void => {
    log(`${what} (${((performance.now() - started) / 1000).toFixed(1)} s)`);
    started = performance.now();
  };
  const kernel = fetchKernel();
  step(`kernel ${kernel.version}`);
  const disks = await buildDisks(kernel, log);
  step(`disks ready: trusted image ${disks.digest}`);
  if (!standIn) {
    const absent = new Proxy({}, { get: () => { throw new Error('the stand-in TPMs are not provisioned in a run of measured scenarios only'); } });
    return { kernel, disks, provisioned: absent as Provisioned, initramfs: { busybox: '', dracut: '', 'dracut-shell': '' } };
  }
  const provisioned = await provisionTpms(disks);
  step(`TPM provisioned; the attacker's provisioning from the rogue state: exit ${provisioned.attack.status} (${provisioned.attack.output.split('\n').at(-1)})`);
  const busybox = buildGuestInitramfs(kernel);
  step(`busybox initramfs ${path.basename(busybox)}`);
  const initramfs: Record<Initramfs, string> = { busybox, dracut: '', 'dracut-shell': '' };
  for (const flow of ['systemd', 'shell'] as const) {
    if (flow === 'systemd' ? !needDracut : !needShellFlow) continue;
    const out = path.join(path.dirname(provisioned.trusted.sealroot), `dracut-${flow}-${dracutModulesKey()}.img`);
    if (!fs.existsSync(out)) buildDracutInitramfs({ kernel, stateDir: provisioned.trusted.sealroot, out, flow });
    initramfs[flow === 'systemd' ? 'dracut' : 'dracut-shell'] = out;
    step(`dracut initramfs (${flow} flow) ${path.relative(CACHE, out)}`);
  }
  return { kernel, disks, provisioned, initramfs };
}

/**
 * boot-embedded's initramfs: the busybox one with the trusted image inside and root.image naming it. The image is
 * taken from the base disk (debugfs: the host need not mount it).
 */
function embeddedInitramfs(setup: Setup): string {
  const hex = setup.disks.digest.slice('sha256:'.length);
  const image = path.join(CACHE, 'initramfs', `root-image-${hex}.cfs`);
  if (!fs.existsSync(image)) {
    fs.mkdirSync(path.dirname(image), { recursive: true });
    execFileSync('debugfs', ['-R', `dump /composefs/images/${hex} ${image}.tmp`, setup.disks.files.base], { stdio: 'ignore' });
    fs.renameSync(`${image}.tmp`, image);
  }
  return buildGuestInitramfs(setup.kernel, {
    name: 'embedded-guest',
    bootConfig: `${BOOT_CONFIG}[root]\nimage = "${EMBEDDED_IMAGE}"\n`,
    files: { [EMBEDDED_IMAGE.slice(1)]: fs.readFileSync(image) },
  });
}

/**
 * The swap disk, last of the disks: 1 GiB (sparse), one MBR partition (type 0x82) from 1 MiB. The guest swaps on the
 * partition and the attacker of swap-tamper writes the whole disk: the kernel refuses writes to the active swap
 * device itself (ETXTBSY, measured on 6.12), not to the disk under it.
 */
function swapDisk(file: string): string {
  const size = 1024 * 2 ** 20;
  const start = 2048;
  const mbr = Buffer.alloc(512);
  const entry = 446;
  mbr.set([0x00, 0xfe, 0xff, 0xff, 0x82, 0xfe, 0xff, 0xff], entry);
  mbr.writeUInt32LE(start, entry + 8);
  mbr.writeUInt32LE(size / 512 - start, entry + 12);
  mbr.writeUInt16LE(0xaa55, 510);
  fs.writeFileSync(file, mbr);
  fs.truncateSync(file, size);
  return file;
}

export function kernelArgs(scenario: Scenario, disks: Disks, initramfs: Initramfs, unswappable: Unswappable = 'default'): string {
  // The ostree scenarios boot with their BLS entries' options (qemu/lib/ostree.ts), not with these.
  const karg = scenario.karg === 'ostree' ? 'ostree=(from the BLS entry)'
    : `composefs=${(scenario.karg === 'composefs-forged' ? disks.forgedDigest : disks.digest).slice('sha256:'.length)}`;
  const test = `test.scenario=${scenario.name} test.pcr=${scenario.pcr} test.precap=${scenario.precap === true ? 1 : 0}`;
  // dracutDefaults: dracut's own defaults (rd.shell=1): a failure path that ended in the emergency shell would show.
  const emergency = `${scenario.dracutDefaults === true ? '' : ' rd.shell=0 rd.emergency=poweroff'}${scenario.startTimeoutSeconds === undefined ? '' : ` test.sealroot-timeout=${scenario.startTimeoutSeconds}s`}`;
  const dracut = initramfs !== 'busybox' ? ` root=/dev/vda rootfstype=ext4 rw${emergency} systemd.show_status=0` : '';
  // sealroot as PID 1 mounts root= itself; init= and its argument (after --, for init) run the check after its switch.
  const pid1 = scenario.handover === 'sealroot' ? ' test.handover=sealroot root=/dev/vda rootfstype=ext4 rw init=/bin/sh -- /run/sealroot-test/after-switch' : '';
  const memory = `${scenario.swap === undefined ? '' : ` test.swap=${scenario.swap}`}${unswappable === 'default' ? '' : ` test.unswappable=${unswappable}`}`;
  return `loglevel=5 ${karg} ${test}${dracut}${pid1}${memory}`;
}

export async function runScenario(setup: Setup, scenario: Scenario, workDir: string, onLine?: (line: string) => void, through = scenario.initramfs, unswappable: Unswappable = 'default'): Promise<{ verdict: Verdict; result: BootResult; console: string }> {
  const name = `${scenario.name}${through === scenario.initramfs ? '' : `.${through}`}${unswappable === 'default' ? '' : `.unswappable-${unswappable}`}`;
  const dir = freshDir(path.join(workDir, name));
  if (scenario.lifecycle !== undefined) {
    return runLifecycleScenario({ kernel: setup.kernel, disks: setup.disks, trusted: setup.provisioned.trusted, busybox: setup.initramfs.busybox }, scenario, dir);
  }
  if (scenario.measured !== undefined) return runMeasuredScenario(setup.kernel, setup.disks, scenario, scenario.measured, dir, workDir);
  if (scenario.ostree !== undefined) {
    const ostree = await ostreeDisks(setup.kernel, log);
    return runOstreeScenario({ kernel: setup.kernel, busybox: setup.initramfs.busybox, ostree, victimMd5: setup.disks.victimMd5 }, scenario, dir, log);
  }
  const disk = scenario.diskEdit === undefined ? setup.disks.files[scenario.disk] : editedDisk(setup.disks.files[scenario.disk], scenario.diskEdit, dir);
  const drives = [{ file: disk, snapshot: true }];
  if (through !== 'busybox' && scenario.tpm === 'forged') {
    throw new Error('the dracut initramfs carries the trusted TPM state only: run forged-digest through busybox');
  }
  let swtpm;
  if (scenario.tpm !== 'none') {
    const state = setup.provisioned[scenario.tpm];
    fs.cpSync(state.swtpm, path.join(dir, 'swtpm'), { recursive: true });
    swtpm = await startGuestSwtpm(path.join(dir, 'swtpm'));
    if (through === 'busybox') drives.push({ file: stateDisk(state.sealroot, path.join(dir, 'state.img')), snapshot: false });
  } else if (through === 'busybox') {
    drives.push({ file: stateDisk(setup.provisioned.trusted.sealroot, path.join(dir, 'state.img')), snapshot: false });
  }
  if (scenario.swap !== undefined) drives.push({ file: swapDisk(path.join(dir, 'swap.img')), snapshot: false });
  const stall = scenario.startTimeoutSeconds !== undefined && swtpm !== undefined ? stallTpm(swtpm.process) : undefined;
  try {
    const result = await boot({
      kernel: setup.kernel,
      initrd: scenario.embeddedImage === true ? embeddedInitramfs(setup) : setup.initramfs[through],
      drives,
      append: kernelArgs(scenario, setup.disks, through, unswappable),
      // Less RAM: the pressure (writing more than the RAM) takes time under TCG.
      memoryMiB: scenario.swap === undefined ? undefined : 512,
      tpmSocket: swtpm?.socket,
      timeoutSeconds: through === 'busybox' ? 120 : 180,
      onLine: stall === undefined ? onLine : (line) => {
        stall.onLine(line);
        onLine?.(line);
      },
    });
    const console = path.join(dir, 'console.log');
    fs.writeFileSync(console, result.console);
    // Judged as booted: through the alsoThrough initramfs, that one's expectations (the shell flow's power-off).
    return { verdict: judge(through === scenario.initramfs ? scenario : { ...scenario, initramfs: through }, result.lines, result.timedOut, setup.disks.victimMd5, unswappable), result, console };
  } finally {
    stall?.release();
    await swtpm?.stop();
  }
}

async function main(argv: string[]): Promise<number> {
  let jobs = Number(process.env.QEMU_TEST_JOBS ?? 2);
  const names: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--jobs') jobs = Number(argv[++i]);
    else names.push(argv[i]!);
  }
  const unknown = names.filter((name) => !SCENARIOS.some((scenario) => scenario.name === name));
  if (unknown.length > 0 || !(jobs >= 1)) {
    process.stderr.write(`run-tests: unknown scenario ${unknown.join(', ')} (known: ${SCENARIOS.map((s) => s.name).join(' ')})\n`);
    return 2;
  }
  const selected = names.length === 0 ? SCENARIOS : SCENARIOS.filter((scenario) => names.includes(scenario.name));
  const started = performance.now();
  let setup: Setup;
  try {
    const through = selected.flatMap((scenario) => [scenario.initramfs, scenario.alsoThrough]);
    setup = await setUp(through.includes('dracut'), through.includes('dracut-shell'), selected.some((scenario) => scenario.measured === undefined));
  } catch (error) {
    const message = (error as Error).message.split('\n')[0];
    for (const scenario of selected) process.stdout.write(`FAIL ${scenario.name}: setup: ${message}\n`);
    process.stderr.write(`${(error as Error).stack}\n`);
    process.stdout.write(`0 passed, ${selected.length} failed\n`);
    return 1;
  }
  // One directory per run (runs in the same tree may overlap); .cache/qemu/runs/latest points at the newest.
  const runs = path.join(CACHE, 'runs');
  pruneCache(runs, (name) => name === 'latest');
  const workDir = path.join(runs, `${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}`);
  fs.mkdirSync(workDir, { recursive: true });
  fs.rmSync(path.join(runs, 'latest'), { force: true });
  fs.symlinkSync(path.basename(workDir), path.join(runs, 'latest'));
  let passed = 0;
  let failed = 0;
  const queue = [...selected];
  const worker = async (): Promise<void> => {
    for (let scenario = queue.shift(); scenario !== undefined; scenario = queue.shift()) {
      let line = '';
      try {
        const passes = [scenario.initramfs, ...(scenario.alsoThrough === undefined ? [] : [scenario.alsoThrough])]
          .flatMap((through) => (scenario.unswappable ?? ['default' as const]).map((unswappable) => ({ through, unswappable })));
        for (const { through, unswappable } of passes) {
          const { verdict, result, console } = await runScenario(setup, scenario, workDir, undefined, through, unswappable);
          const detail = `${scenario.what} [${through}${unswappable === 'default' ? '' : `, memory.unswappable=${unswappable}`}, ${(result.millis / 1000).toFixed(1)} s]`;
          if (!verdict.pass) {
            line = `FAIL ${scenario.name}: ${verdict.reason}\n    ${detail}; console ${console}:\n${relevantLines(result.lines).map((l) => `    | ${l}\n`).join('')}`;
            break;
          }
          line += `    ${detail}: ${verdict.reason}\n`;
        }
        if (line.startsWith('FAIL ')) failed++;
        else {
          passed++;
          line = `PASS ${scenario.name}\n${line}`;
        }
      } catch (error) {
        failed++;
        line = `FAIL ${scenario.name}: harness: ${(error as Error).message}\n`;
      }
      process.stdout.write(line);
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, selected.length) }, worker));
  log(`all scenarios in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  return failed === 0 ? 0 : 1;
}

if (import.meta.main) process.exitCode = await main(process.argv.slice(2));
