// npm run bench --json FILE (issue 16): the figures a section records, the report bench.ts writes, its arguments.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { benchReport, BenchUsageError, Figures, parseBenchArgs, readSectionFigures } from '../../scripts/bench/lib/figures.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SECTIONS = ['boot-host', 'startup', 'verity'];

test('a comparison carries both figures, the ratio ours/reference, and whether its target is met', () => {
  const figures = new Figures();
  const startup = figures.comparison('sealroot --version', 26, 20, 'node -e 0', { statistic: 'median of 21', target: 1.3 });
  assert.equal(startup, {
    kind: 'comparison', ours: 26, reference: 20, referenceName: 'node -e 0', ratio: 1.3, unit: 'ms', statistic: 'median of 21', target: 1.3, met: true,
  });
  assert.is(figures.comparison('slower', 27, 20, 'x', { target: 1.3 }).met, false);
  assert.is(figures.comparison('no target', 27, 20, 'x').met, undefined);
  // Throughput: higher is better, so the target is a floor.
  assert.is(figures.comparison('throughput', 300, 100, 'fsck.erofs', { unit: 'cases/s', better: 'higher', target: 2 }).met, true);
  assert.is(figures.value('kernel errors', 1, { unit: 'images', target: 0 }).met, false);
  assert.equal(figures.fact('images identical', true), { kind: 'fact', value: true });
  assert.equal(Object.keys(figures.figures), ['sealroot --version', 'slower', 'no target', 'throughput', 'kernel errors', 'images identical']);
});

test('a figure that is not a finite number, or recorded twice, is an error, not a null in the JSON', () => {
  const figures = new Figures();
  assert.throws(() => figures.value('in-process', Number.NaN), /'in-process': value is NaN/);
  assert.throws(() => figures.comparison('ratio', 5, 0, 'x'), /'ratio': ratio is Infinity/);
  figures.value('once', 1);
  assert.throws(() => figures.value('once', 2), /recorded twice/);
});

test('a section process writes its figures on exit (also through process.exit) when bench.ts names a file', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-figures-'));
  try {
    const file = path.join(dir, 'section.json');
    const script = `import { figures } from ${JSON.stringify(path.join(ROOT, 'scripts/bench/lib/figures.ts'))};
      figures.comparison('load', 540, 575, 'cp + fsverity digest', { target: 0.65 });
      figures.value('image size', 268435456, { unit: 'bytes' });
      process.exit(3);`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, SEALROOT_BENCH_FIGURES: file }, encoding: 'utf8' });
    assert.is(run.status, 3, run.stderr);
    const written = readSectionFigures(file);
    assert.equal(Object.keys(written), ['load', 'image size']);
    assert.is(written.load!.kind, 'comparison');
    assert.is((written.load as { ratio: number }).ratio, 540 / 575);
    assert.is((written.load as { met: boolean }).met, false);
    // Without the variable (a section run alone) nothing is written; a parent that recorded nothing writes nothing.
    fs.rmSync(file);
    const { SEALROOT_BENCH_FIGURES: _unset, ...env } = process.env;
    assert.is(spawnSync(process.execPath, ['--input-type=module', '-e', script], { env }).status, 3);
    assert.not.ok(fs.existsSync(file));
    new Figures().write(file);
    assert.not.ok(fs.existsSync(file));
    assert.equal(readSectionFigures(file), {});
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the report: one entry per section run, its status from the exit code, its figures, the machine and commit', () => {
  const figures = new Figures();
  figures.comparison('sealroot --version', 22, 20, 'node -e 0');
  const report = benchReport({
    started: new Date('2026-12-03T08:00:00Z'), finished: new Date('2026-12-03T08:01:00Z'), commit: 'abc1234-dirty',
    sections: { startup: { exitCode: 0, seconds: 1.5, figures: figures.figures }, verity: { exitCode: 1, seconds: 3, figures: {} } },
  });
  assert.is(report.format, 'sealroot-bench/1');
  assert.is(report.started, '2026-12-03T08:00:00.000Z');
  assert.is(report.commit, 'abc1234-dirty');
  assert.is(report.machine.cpus, os.availableParallelism());
  assert.is(report.machine.node, process.version);
  assert.is(report.sections.startup!.status, 'ok');
  assert.is(report.sections.verity!.status, 'failed');
  assert.is((report.sections.startup!.figures['sealroot --version'] as { ratio: number }).ratio, 1.1);
  // It survives JSON as it is (no NaN, no undefined that would vanish from a figure's meaning).
  assert.equal(JSON.parse(JSON.stringify(report)).sections.startup.figures, JSON.parse(JSON.stringify(figures.figures)));
  assert.not.ok('commit' in benchReport({ started: new Date(), finished: new Date(), sections: {} }));
});

test('arguments: sections, --json FILE and --json=FILE, and the FILE left over when npm took --json itself', () => {
  assert.equal(parseBenchArgs([], {}, SECTIONS), { sections: SECTIONS });
  assert.equal(parseBenchArgs(['verity', 'startup'], {}, SECTIONS), { sections: ['startup', 'verity'] });
  assert.equal(parseBenchArgs(['startup', '--json', 'out.json'], {}, SECTIONS), { sections: ['startup'], json: 'out.json' });
  assert.equal(parseBenchArgs(['--json=out.json'], {}, SECTIONS), { sections: SECTIONS, json: 'out.json' });
  // `npm run bench startup --json out.json`: npm sets npm_config_json=true and passes [startup, out.json].
  assert.equal(parseBenchArgs(['startup', 'out.json'], { npm_config_json: 'true' }, SECTIONS), { sections: ['startup'], json: 'out.json' });
  assert.equal(parseBenchArgs(['out.json'], { npm_config_json: 'true' }, SECTIONS), { sections: SECTIONS, json: 'out.json' });
  assert.throws(() => parseBenchArgs(['startup'], { npm_config_json: 'true' }, SECTIONS), (error: unknown) => error instanceof BenchUsageError && /npm took --json/.test(error.message));
  assert.throws(() => parseBenchArgs(['startup', 'out.json'], {}, SECTIONS), /unknown section 'out.json'/);
  assert.throws(() => parseBenchArgs(['--json'], {}, SECTIONS), /--json needs a FILE/);
  assert.throws(() => parseBenchArgs(['--jsn', 'x'], {}, SECTIONS), /unknown option '--jsn'/);
});

test.run();
