// npm run bench [SECTION...] [--json FILE]: runs each section in scripts/bench/ (a standalone script printing its own
// results, each figure next to the reference tool measured in the same run, as a ratio) and prints them in order.
// With --json, every section's figures (scripts/bench/lib/figures.ts) are also written to FILE as one JSON report.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { benchReport, BenchUsageError, parseBenchArgs, readSectionFigures, type SectionResult } from './bench/lib/figures.ts';

const dir = path.join(import.meta.dirname, 'bench');
const all = fs.readdirSync(dir).filter((file) => file.endsWith('.ts')).sort().map((file) => path.basename(file, '.ts'));
let asked: ReturnType<typeof parseBenchArgs>;
try {
  asked = parseBenchArgs(process.argv.slice(2), process.env, all);
} catch (error) {
  if (!(error instanceof BenchUsageError)) throw error;
  process.stderr.write(`bench: ${error.message}\n`);
  process.exit(2);
}

const started = new Date();
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-bench-figures-'));
const results: Record<string, SectionResult> = {};
let failed = 0;
try {
  for (const name of asked.sections) {
    process.stdout.write(`\n## ${name}\n`);
    const figuresFile = path.join(work, `${name}.json`);
    const sectionStarted = performance.now();
    const result = spawnSync(process.execPath, [path.join(dir, `${name}.ts`)], {
      stdio: 'inherit', env: { ...process.env, SEALROOT_BENCH_FIGURES: figuresFile },
    });
    if (result.status !== 0) {
      failed += 1;
      process.stdout.write(`(section ${name} failed with exit ${result.status})\n`);
    }
    results[name] = { exitCode: result.status, seconds: (performance.now() - sectionStarted) / 1000, figures: readSectionFigures(figuresFile) };
  }
  if (asked.json !== undefined) {
    let commit: string | undefined;
    try {
      commit = execFileSync('git', ['describe', '--always', '--dirty'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      commit = undefined; // not a git checkout: the report says nothing about the commit
    }
    const report = benchReport({ started, finished: new Date(), commit, sections: results });
    const temp = `${asked.json}.tmp-${process.pid}`;
    fs.writeFileSync(temp, `${JSON.stringify(report, null, 2)}\n`);
    fs.renameSync(temp, asked.json);
    process.stdout.write(`\nfigures written to ${asked.json}\n`);
  }
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
process.exitCode = failed === 0 ? 0 : 1;
