// The QEMU boot breakdown (issue 7): kernel start -> sealroot start -> digest unsealed -> image verified -> root
// mounted -> switch-root, from the stamps the guest prints and sealroot's own step times; sealroot's share of the
// initramfs time (target <= 10%); and the initramfs size with and without sealroot.
// Reference, measured in the same run: the same dracut initramfs without the sealroot modules booting the same
// sample root as a plain ext4 root. Under TCG the guest runs far slower than native hardware (Node's start above
// all): compare within the guest, never with native figures.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runScenario, setUp } from '../../qemu/run-tests.ts';
import { buildDracutInitramfs, dracutModulesKey } from '../../qemu/lib/dracut.ts';
import { buildInitramfs } from '../../qemu/lib/initramfs.ts';
import { CACHE } from '../../qemu/lib/paths.ts';
import { SCENARIOS } from '../../qemu/lib/scenarios.ts';
import { formatMilestones, milestones, stamps, stepSeconds, stepTimes } from '../../qemu/lib/timeline.ts';
import { boot } from '../../qemu/lib/vm.ts';
import { figures } from './lib/figures.ts';

const RUNS = Number(process.env.QEMU_BENCH_RUNS ?? 3);
const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

const setup = await setUp(true, false);
const scenario = SCENARIOS.find((candidate) => candidate.name === 'boot-ok')!;
const without = path.join(CACHE, 'bench', `dracut-without-sealroot-${dracutModulesKey()}.img`);
if (!fs.existsSync(without)) {
  fs.mkdirSync(path.dirname(without), { recursive: true });
  buildDracutInitramfs({ kernel: setup.kernel, out: without, withoutSealroot: true });
}
const busyboxWithout = buildInitramfs({ name: 'bench-busybox-only', kernel: setup.kernel, binaries: [], modules: [], files: {}, init: '#!/bin/sh\n' });

interface Sample {
  initramfs: number;
  sealroot?: number;
  /** sealroot's process-start step: exec -> boot() (Node's start and the bundle's load), seconds. */
  nodeStart?: number;
  lines: string[];
}
const withSealroot: Sample[] = [];
const reference: Sample[] = [];
for (let run = 0; run < RUNS; run++) {
  const { verdict, result } = await runScenario(setup, scenario, path.join(CACHE, 'bench'));
  if (!verdict.pass) throw new Error(`boot-ok failed in the benchmark: ${verdict.reason}`);
  const found = stamps(result.lines);
  withSealroot.push({
    initramfs: found.get('root-init')! - found.get('kernel-runs-init')!,
    sealroot: found.get('sealroot-end')! - found.get('sealroot-start')!,
    nodeStart: (stepTimes(result.lines).find(([name]) => name === 'process-start')?.[1] ?? Number.NaN) / 1000,
    lines: result.lines,
  });
  const plain = await boot({
    kernel: setup.kernel, initrd: without, drives: [{ file: setup.disks.plainRoot, snapshot: true }], timeoutSeconds: 180,
    append: 'loglevel=5 root=/dev/vda rootfstype=ext4 rw rd.shell=0 rd.emergency=poweroff systemd.show_status=0',
  });
  const plainStamps = stamps(plain.lines);
  if (!plainStamps.has('root-init') || !plainStamps.has('kernel-runs-init')) throw new Error(`the reference boot did not reach the root's init:\n${plain.lines.slice(-15).join('\n')}`);
  reference.push({ initramfs: plainStamps.get('root-init')! - plainStamps.get('kernel-runs-init')!, lines: plain.lines });
}

const middle = withSealroot.indexOf(withSealroot.find((sample) => sample.initramfs === median(withSealroot.map((s) => s.initramfs)))!);
const { milestones: list, steps, missing } = milestones(withSealroot[middle]!.lines);
console.log(`boot-ok through the dracut initramfs (systemd flow), QEMU TCG, ${RUNS} boots; breakdown of the median boot (guest uptime):`);
for (const line of formatMilestones(list)) console.log(`  ${line}`);
if (missing.length > 0) console.log(`  (missing on the console: ${missing.join(', ')})`);
console.log(`  sealroot's own steps (ms): ${steps.map(([name, ms]) => `${name} ${ms}`).join(', ')}`);
const initramfsWith = median(withSealroot.map((s) => s.initramfs));
const initramfsWithout = median(reference.map((s) => s.initramfs));
const sealrootWall = median(withSealroot.map((s) => s.sealroot!));
const stepsTotal = stepSeconds(steps);
console.log(`initramfs time (kernel runs /init -> root's init runs), median of ${RUNS}:`);
console.log(`  with sealroot: ${initramfsWith.toFixed(2)} s; reference without sealroot (plain ext4 root): ${initramfsWithout.toFixed(2)} s; ratio ${(initramfsWith / initramfsWithout).toFixed(2)}x`);
console.log(`  sealroot (exec -> exit): ${sealrootWall.toFixed(2)} s = ${((100 * sealrootWall) / initramfsWith).toFixed(1)}% of the initramfs time (target <= 10%)`);
console.log(`  of which sealroot's steps after main(): ${stepsTotal.toFixed(2)} s = ${((100 * stepsTotal) / initramfsWith).toFixed(1)}% (target <= 5%); the rest is the process start (Node SEA under TCG)`);
const nodeStart = median(withSealroot.map((s) => s.nodeStart!));
console.log(`  Node's start (exec -> boot(): Node's own start and the bundle's load, sealroot's process-start step), median of ${RUNS}: `
  + `${nodeStart.toFixed(2)} s = ${((100 * nodeStart) / initramfsWith).toFixed(1)}%`);
const statistic = `median of ${RUNS}`;
figures.comparison('initramfs time', initramfsWith, initramfsWithout, 'same dracut initramfs without sealroot, plain ext4 root', { unit: 's', statistic });
figures.value('sealroot exec to exit', sealrootWall, { unit: 's', statistic });
figures.value('sealroot share of the initramfs time', (100 * sealrootWall) / initramfsWith, { unit: '%', target: 10 });
figures.value("sealroot's steps after main()", stepsTotal, { unit: 's', note: 'the median boot' });
figures.value("sealroot's steps share of the initramfs time", (100 * stepsTotal) / initramfsWith, { unit: '%', target: 5 });
figures.value("Node's start (process-start step)", nodeStart, { unit: 's', statistic });
const seen = new Map<string, number>();
for (const [name, ms] of steps) {
  // A step may run more than once (locate-root per layout tried): the second is "step NAME (2)".
  const count = (seen.get(name) ?? 0) + 1;
  seen.set(name, count);
  figures.value(`step ${name}${count > 1 ? ` (${count})` : ''}`, ms, { note: 'the median boot' });
}
const size = (file: string): number => fs.statSync(file).size;
console.log('initramfs size (zstd -10):');
console.log(`  dracut: with sealroot ${mib(size(setup.initramfs.dracut))}, without ${mib(size(without))} (+${mib(size(setup.initramfs.dracut) - size(without))})`);
figures.value('dracut initramfs with sealroot', size(setup.initramfs.dracut), { unit: 'bytes' });
figures.value('dracut initramfs without sealroot', size(without), { unit: 'bytes' });
figures.value('busybox initramfs with sealroot', size(setup.initramfs.busybox), { unit: 'bytes' });
figures.value('busybox initramfs alone', size(busyboxWithout), { unit: 'bytes' });
console.log(`  hand-built busybox: with sealroot ${mib(size(setup.initramfs.busybox))}, busybox alone ${mib(size(busyboxWithout))}`);
