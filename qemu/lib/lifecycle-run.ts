// Runs one trust lifecycle scenario (./lifecycle.ts): its boots in order on one TPM state, each judged like any
// scenario's boot plus the lifecycle's own lines; the first failing boot fails the scenario.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Disks } from './disk.ts';
import { judgeLifecycleLines, lifecycleKernelArgs, type LifecycleBoot } from './lifecycle.ts';
import type { Kernel } from './paths.ts';
import { stateDisk, type TpmState } from './provision.ts';
import { judge, type Scenario, type Verdict } from './scenarios.ts';
import { startGuestSwtpm } from './swtpm.ts';
import { boot, type BootResult } from './vm.ts';

export interface LifecycleSetup {
  kernel: Kernel;
  disks: Disks;
  trusted: TpmState;
  busybox: string;
}

export async function runLifecycleScenario(setup: LifecycleSetup, scenario: Scenario, dir: string): Promise<{ verdict: Verdict; result: BootResult; console: string }> {
  const boots = scenario.lifecycle!;
  // One machine: the TPM state carries over from boot to boot (NV index, seeds); the disk starts fresh each boot.
  fs.cpSync(setup.trusted.swtpm, path.join(dir, 'swtpm'), { recursive: true });
  const state = stateDisk(setup.trusted.sealroot, path.join(dir, 'state.img'));
  const reasons: string[] = [];
  let last: { result: BootResult; console: string } | undefined;
  for (const [i, step] of boots.entries()) {
    const swtpm = await startGuestSwtpm(path.join(dir, 'swtpm'));
    let result: BootResult;
    try {
      result = await boot({
        kernel: setup.kernel,
        initrd: setup.busybox,
        drives: [{ file: setup.disks.files.lifecycle, snapshot: true }, { file: state, snapshot: true }],
        append: lifecycleKernelArgs(scenario.name, step, setup.disks.lifecycleDigests),
        tpmSocket: swtpm.socket,
        timeoutSeconds: 120,
      });
    } finally {
      await swtpm.stop();
    }
    const console = path.join(dir, `console-${i + 1}.log`);
    fs.writeFileSync(console, result.console);
    last = { result, console };
    const verdict = judgeBoot(scenario, step, result, setup.disks.victimMd5);
    const what = `boot ${i + 1} (${step.image}, ${step.pcr}${step.kill === true ? ', killed' : ''}${step.action === undefined ? '' : `, then ${step.action}`})`;
    if (!verdict.pass) return { verdict: { pass: false, reason: `${what}: ${verdict.reason}` }, ...last };
    reasons.push(`${what}: ${verdict.reason}`);
  }
  return { verdict: { pass: true, reason: reasons.join('; ') }, ...last! };
}

function judgeBoot(scenario: Scenario, step: LifecycleBoot, result: BootResult, victimMd5: string): Verdict {
  if (result.timedOut) return { pass: false, reason: 'timed out (no decision from the guest)' };
  let verdict: Verdict = { pass: true, reason: 'done' };
  if (step.expect.kind !== 'any') {
    const expect = step.expect.kind === 'boot' ? { kind: 'boot' as const } : step.expect;
    // A stop is judged on sealroot's own lines: what the action after it printed is not the boot's failure.
    const exit = result.lines.findIndex((line) => line.startsWith('@@ SEALROOT-EXIT '));
    const lines = expect.kind === 'stop' && exit >= 0 ? [...result.lines.slice(0, exit + 1), '@@ END'] : result.lines;
    verdict = judge({ ...scenario, expect }, lines, result.timedOut, victimMd5);
    if (!verdict.pass) return verdict;
  } else if (!result.lines.includes('@@ END')) {
    return { pass: false, reason: 'the guest never printed its end line' };
  }
  const missing = judgeLifecycleLines(step, result.lines);
  if (missing !== undefined) return { pass: false, reason: missing };
  if (step.expect.kind === 'boot') return { pass: true, reason: `verified as version ${step.expect.version}` };
  return verdict;
}
