// The mount steps' hold on the CPU (src/boot/mount-priority.ts): SCHED_FIFO 1 for this thread while held, the
// previous policy back after, and without the right to it (an unprivileged user) the boot's usual priority with a line.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { holdCpuForMounts } from '../../src/boot/mount-priority.ts';
import { currentScheduling, SCHED_FIFO, SCHED_OTHER } from '../../src/sys/scheduling.ts';
import { requireRoot, ROOT } from '../helpers/tools.ts';

requireRoot();

const lines: string[] = [];
const log = { info: (line: string) => lines.push(line), notice: (line: string) => lines.push(line), warn: (line: string) => lines.push(line), error: (line: string) => lines.push(line) };

test('held: this thread runs SCHED_FIFO 1; released (once, twice is harmless): SCHED_OTHER 0 again', () => {
  assert.equal(currentScheduling(), { policy: SCHED_OTHER, priority: 0 });
  const release = holdCpuForMounts(log);
  try {
    assert.equal(currentScheduling(), { policy: SCHED_FIFO, priority: 1 });
  } finally {
    release();
  }
  assert.equal(currentScheduling(), { policy: SCHED_OTHER, priority: 0 });
  release();
  assert.equal(currentScheduling(), { policy: SCHED_OTHER, priority: 0 });
  assert.equal(lines, []);
});

test('without CAP_SYS_NICE (user nobody): the usual priority, said in one line, and the boot goes on', () => {
  const script = `
    import { holdCpuForMounts } from ${JSON.stringify(path.join(ROOT, 'src/boot/mount-priority.ts'))};
    import { currentScheduling } from ${JSON.stringify(path.join(ROOT, 'src/sys/scheduling.ts'))};
    const lines = [];
    const log = { info: (l) => lines.push(l), notice: (l) => lines.push(l), warn: (l) => lines.push(l), error: (l) => lines.push(l) };
    const release = holdCpuForMounts(log);
    const held = currentScheduling();
    release();
    console.log(JSON.stringify({ lines, held }));`;
  const run = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', process.execPath, '--input-type=module', '-e', script],
    { encoding: 'utf8', env: { ...process.env, SEALROOT_SHIM: path.join(ROOT, 'native/build/Release/sys_shim.node') } });
  assert.is(run.status, 0, run.stderr);
  const outcome = JSON.parse(run.stdout) as { lines: string[]; held: unknown };
  assert.equal(outcome.held, { policy: SCHED_OTHER, priority: 0 });
  assert.equal(outcome.lines, ['mount steps at the usual priority: sched_setscheduler(SCHED_FIFO): EPERM']);
});

test.run();
