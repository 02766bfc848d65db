// npm test [TIER...]: the type check, then the test tiers in order (unit, integration, qemu), each in its own
// process; prints every tier's result and one closing line "tests: N passed, N failed".
// A tier that cannot run here (not root, a tool missing) fails: it is never skipped silently.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const bin = (name: string) => path.join(root, 'node_modules/.bin', name);
const TIERS = ['typecheck', 'unit', 'integration', 'qemu'] as const;
type Tier = (typeof TIERS)[number];

interface Outcome {
  passed: number;
  failed: number;
}

function runTier(tier: Tier): Outcome {
  // Plain output: NO_COLOR, and no FORCE_COLOR beside it (Node warns in every child when both are set).
  const { FORCE_COLOR: _forced, ...inherited } = process.env;
  const env = { ...inherited, PATH: `${path.join(root, 'node_modules/.bin')}:${process.env.PATH ?? ''}`, NO_COLOR: '1' };
  if (tier === 'typecheck') {
    const result = spawnSync(bin('tsc'), ['-p', root], { stdio: 'inherit', env });
    return result.status === 0 ? { passed: 1, failed: 0 } : { passed: 0, failed: 1 };
  }
  if (tier === 'qemu') {
    const result = spawnSync(path.join(root, 'qemu/run-tests'), [], { stdio: ['ignore', 'pipe', 'inherit'], env, encoding: 'utf8', maxBuffer: 1 << 28 });
    process.stdout.write(result.stdout ?? '');
    const summary = /^(\d+) passed, (\d+) failed$/m.exec(result.stdout ?? '');
    if (result.error !== undefined) process.stderr.write(`test: cannot run qemu/run-tests: ${result.error.message}\n`);
    if (summary === null) return { passed: 0, failed: 1 };
    const outcome = { passed: Number(summary[1]), failed: Number(summary[2]) };
    return result.status === 0 || outcome.failed > 0 ? outcome : { passed: outcome.passed, failed: outcome.failed + 1 };
  }
  if (tier === 'integration' && process.getuid?.() !== 0) {
    process.stderr.write('test: the integration tier needs root (mounts, loop devices, swtpm): FAILED, not skipped\n');
    return { passed: 0, failed: 1 };
  }
  const result = spawnSync(bin('uvu'), [path.join('test', tier), '\\.test\\.ts$'], {
    cwd: root, stdio: ['ignore', 'pipe', 'inherit'], env, encoding: 'utf8', maxBuffer: 1 << 28,
  });
  process.stdout.write(result.stdout ?? '');
  const total = /Total:\s+(\d+)/.exec(result.stdout ?? '');
  const passed = /Passed:\s+(\d+)/.exec(result.stdout ?? '');
  if (total === null || passed === null) return { passed: 0, failed: 1 };
  const outcome = { passed: Number(passed[1]), failed: Number(total[1]) - Number(passed[1]) };
  // uvu exits non-zero when a file throws outside a test: count that as a failure too.
  return result.status === 0 || outcome.failed > 0 ? outcome : { passed: outcome.passed, failed: outcome.failed + 1 };
}

const asked = process.argv.slice(2);
const unknown = asked.filter((tier) => !(TIERS as readonly string[]).includes(tier));
if (unknown.length > 0) {
  process.stderr.write(`test: unknown tier ${unknown.join(', ')} (tiers: ${TIERS.join(', ')})\n`);
  process.exit(2);
}
const tiers = asked.length === 0 ? TIERS : TIERS.filter((tier) => asked.includes(tier));
let passed = 0;
let failed = 0;
for (const tier of tiers) {
  const started = performance.now();
  process.stdout.write(`\n== tier ${tier}\n`);
  const outcome = runTier(tier);
  passed += outcome.passed;
  failed += outcome.failed;
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  process.stdout.write(`== tier ${tier}: ${outcome.passed} passed, ${outcome.failed} failed (${seconds} s)\n`);
}
process.stdout.write(`\ntests: ${passed} passed, ${failed} failed\n`);
process.exitCode = failed === 0 ? 0 : 1;
