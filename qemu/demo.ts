// npm run demo (qemu/demo): boots the boot-ok scenario end to end in QEMU, showing what happens as it happens:
// the guest kernel, a dracut initramfs with the sealroot module, swtpm as the TPM holding the trusted digest, the
// composefs image verified in a sealed memfd and mounted with verity=require, then the switch into the root.
import * as path from 'node:path';
import { runScenario, setUp } from './run-tests.ts';
import { CACHE } from './lib/paths.ts';
import { SCENARIOS } from './lib/scenarios.ts';
import { formatMilestones, milestones } from './lib/timeline.ts';

const say = (line = ''): void => void process.stdout.write(`${line}\n`);
const scenario = SCENARIOS.find((candidate) => candidate.name === 'boot-ok')!;
const started = performance.now();
say('sealroot demo: verified composefs root in a QEMU guest (TCG: expect the guest to run ~10-50x slower than native)');
say('preparing (cached after the first run): guest kernel, disk images, TPM provisioning, dracut initramfs ...');
const setup = await setUp(true, false);
say(`  trusted image digest ${setup.disks.digest}, trusted at version 1 in the trusted set of a swtpm (read bound to PCRs sha256:9,12 + cap PCR 15)`);
say(`  ready in ${((performance.now() - started) / 1000).toFixed(1)} s`);
say();
say('booting (console lines from sealroot and from the test scripts; "@@" lines are what the harness checks):');
const interesting = /sealroot|^@@ |overlayfs|Reached target|Switching root/;
const { verdict, result } = await runScenario(setup, scenario, path.join(CACHE, 'demo'), (line) => {
  if (interesting.test(line) && !/^\[\s*\d+\.\d+\] sealroot: /.test(line)) say(`  | ${line}`);
});
say();
const { milestones: list, missing } = milestones(result.lines);
say('timeline (guest uptime):');
for (const line of formatMilestones(list)) say(`  ${line}`);
if (missing.length > 0) say(`  (not found on the console: ${missing.join(', ')})`);
say();
say(`${verdict.pass ? 'PASS' : 'FAIL'} boot-ok: ${verdict.reason} (boot ${(result.millis / 1000).toFixed(1)} s wall, total ${((performance.now() - started) / 1000).toFixed(1)} s)`);
process.exitCode = verdict.pass ? 0 : 1;
