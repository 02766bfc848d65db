// qemu/run-tests: boots every scenario of issue 7 in QEMU (TCG) with swtpm as the guest's TPM, prints
// `PASS <name>` or `FAIL <name>: <reason>` (with the console lines that matter) and a final `N passed, N failed`.
// Exit status 1 when anything failed, including the setup (a missing tool or kernel fails every scenario loudly).
// Usage: qemu/run-tests [--jobs N] [--keep] [SCENARIO...]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildDisks, OSTREE_KARG, type Disks } from './lib/disk.ts';
import { buildDracutInitramfs, dracutModulesKey } from './lib/dracut.ts';
import { buildGuestInitramfs } from './lib/guest.ts';
import { CACHE, fetchKernel, freshDir, requireHostTools, sealrootBinary, type Kernel } from './lib/paths.ts';
import { provisionTpms, stateDisk, type Provisioned } from './lib/provision.ts';
import { judge, relevantLines, SCENARIOS, type Scenario, type Verdict } from './lib/scenarios.ts';
import { startGuestSwtpm } from './lib/swtpm.ts';
import { boot, QEMU, type BootResult } from './lib/vm.ts';

const HOST_TOOLS = [QEMU, 'swtpm', 'tpm2_pcrextend', 'mkfs.ext4', 'fsverity', 'zstd', 'cpio', 'modprobe', 'depmod', 'xz', 'busybox', 'dracut', 'timeout', 'apt-get', 'dpkg-deb'];

export interface Setup {
  kernel: Kernel;
  disks: Disks;
  provisioned: Provisioned;
  busybox: string;
  dracut: string;
}

const log = (line: string): void => void process.stderr.write(`run-tests: ${line}\n`);

export async function setUp(needDracut: boolean): Promise<Setup> {
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
  const provisioned = await provisionTpms(disks);
  step(`TPM provisioned; the attacker's provisioning from the rogue state: exit ${provisioned.attack.status} (${provisioned.attack.output.split('\n').at(-1)})`);
  const busybox = buildGuestInitramfs(kernel);
  step(`busybox initramfs ${path.basename(busybox)}`);
  let dracut = '';
  if (needDracut) {
    const out = path.join(path.dirname(provisioned.trusted.sealroot), `dracut-${dracutModulesKey()}.img`);
    if (!fs.existsSync(out)) buildDracutInitramfs({ kernel, stateDir: provisioned.trusted.sealroot, out });
    dracut = out;
    step(`dracut initramfs ${path.relative(CACHE, out)}`);
  }
  return { kernel, disks, provisioned, busybox, dracut };
}

export function kernelArgs(scenario: Scenario, disks: Disks): string {
  const karg = scenario.karg === 'ostree' ? OSTREE_KARG
    : `composefs=${(scenario.karg === 'composefs-forged' ? disks.forgedDigest : disks.digest).slice('sha256:'.length)}`;
  const test = `test.scenario=${scenario.name} test.pcr=${scenario.pcr} test.precap=${scenario.precap === true ? 1 : 0}`;
  const dracut = scenario.initramfs === 'dracut' ? ' root=/dev/vda rootfstype=ext4 rw rd.shell=0 rd.emergency=poweroff systemd.show_status=0' : '';
  return `loglevel=5 ${karg} ${test}${dracut}`;
}

export async function runScenario(setup: Setup, scenario: Scenario, workDir: string, onLine?: (line: string) => void): Promise<{ verdict: Verdict; result: BootResult }> {
  const dir = freshDir(path.join(workDir, scenario.name));
  const drives = [{ file: setup.disks.files[scenario.disk], snapshot: true }];
  let swtpm;
  if (scenario.tpm !== 'none') {
    const state = setup.provisioned[scenario.tpm];
    fs.cpSync(state.swtpm, path.join(dir, 'swtpm'), { recursive: true });
    swtpm = await startGuestSwtpm(path.join(dir, 'swtpm'));
    if (scenario.initramfs === 'busybox') drives.push({ file: stateDisk(state.sealroot, path.join(dir, 'state.img')), snapshot: false });
  } else if (scenario.initramfs === 'busybox') {
    drives.push({ file: stateDisk(setup.provisioned.trusted.sealroot, path.join(dir, 'state.img')), snapshot: false });
  }
  try {
    const result = await boot({
      kernel: setup.kernel,
      initrd: scenario.initramfs === 'dracut' ? setup.dracut : setup.busybox,
      drives,
      append: kernelArgs(scenario, setup.disks),
      tpmSocket: swtpm?.socket,
      timeoutSeconds: scenario.initramfs === 'dracut' ? 180 : 120,
      onLine,
    });
    fs.writeFileSync(path.join(dir, 'console.log'), result.console);
    return { verdict: judge(scenario, result.lines, result.timedOut, setup.disks.victimMd5), result };
  } finally {
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
    setup = await setUp(selected.some((scenario) => scenario.initramfs === 'dracut'));
  } catch (error) {
    const message = (error as Error).message.split('\n')[0];
    for (const scenario of selected) process.stdout.write(`FAIL ${scenario.name}: setup: ${message}\n`);
    process.stderr.write(`${(error as Error).stack}\n`);
    process.stdout.write(`0 passed, ${selected.length} failed\n`);
    return 1;
  }
  const workDir = path.join(CACHE, 'runs');
  let passed = 0;
  let failed = 0;
  const queue = [...selected];
  const worker = async (): Promise<void> => {
    for (let scenario = queue.shift(); scenario !== undefined; scenario = queue.shift()) {
      let line: string;
      try {
        const { verdict, result } = await runScenario(setup, scenario, workDir);
        const seconds = (result.millis / 1000).toFixed(1);
        if (verdict.pass) {
          passed++;
          line = `PASS ${scenario.name}\n    ${scenario.what} [${scenario.initramfs}, ${seconds} s]: ${verdict.reason}\n`;
        } else {
          failed++;
          line = `FAIL ${scenario.name}: ${verdict.reason}\n    ${scenario.what} [${scenario.initramfs}, ${seconds} s]; console ${path.join(workDir, scenario.name, 'console.log')}:\n${relevantLines(result.lines).map((l) => `    | ${l}\n`).join('')}`;
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
