// The figures of `npm run bench`, kept as data beside the printed text so that a change's effect can be compared run
// to run without scraping (issue 16). A section records each figure it prints through `figures`; when bench.ts runs
// it with --json, SEALROOT_BENCH_FIGURES names a file per section, written when the section's process exits.
// bench.ts gathers them into one report (benchReport). A section run alone records nothing to disk.
import * as fs from 'node:fs';
import * as os from 'node:os';

/** Which way is better for a figure: a time or a ratio of times is better lower, a throughput higher. */
export type Better = 'lower' | 'higher';

interface Common {
  unit: string;
  /** How the figure was reduced from its runs, e.g. "median of 21". */
  statistic?: string;
  better?: Better;
  /** The goal for `ratio` (comparison) or `value` (value), when the project has one; `met` says whether it holds. */
  target?: number;
  met?: boolean;
  note?: string;
}

/** A figure of sealroot's next to the reference tool's, measured in the same run. */
export interface Comparison extends Common {
  kind: 'comparison';
  ours: number;
  reference: number;
  referenceName: string;
  /** ours / reference, in `unit`s of both. */
  ratio: number;
}

export interface Value extends Common {
  kind: 'value';
  value: number;
}

export interface Fact {
  kind: 'fact';
  value: string | boolean;
}

export type Figure = Comparison | Value | Fact;

type Options = Omit<Common, 'unit' | 'met'> & { unit?: string };

function finite(name: string, label: string, value: number): number {
  if (!Number.isFinite(value)) throw new Error(`bench figure '${name}': ${label} is ${value}, not a measurement`);
  return value;
}

function meets(value: number, target: number | undefined, better: Better | undefined): boolean | undefined {
  if (target === undefined) return undefined;
  return (better ?? 'lower') === 'lower' ? value <= target : value >= target;
}

export class Figures {
  readonly figures: Record<string, Figure> = {};

  private add(name: string, figure: Figure): Figure {
    if (Object.hasOwn(this.figures, name)) throw new Error(`bench figure '${name}' recorded twice`);
    this.figures[name] = figure;
    return figure;
  }

  /** ours against the reference tool's figure of the same run; the ratio is ours / reference. */
  comparison(name: string, ours: number, reference: number, referenceName: string, options: Options = {}): Comparison {
    const ratio = finite(name, 'ours', ours) / finite(name, 'reference', reference);
    finite(name, 'ratio', ratio);
    const { unit = 'ms', ...rest } = options;
    return this.add(name, { kind: 'comparison', ours, reference, referenceName, ratio, unit, ...rest, met: meets(ratio, options.target, options.better) }) as Comparison;
  }

  value(name: string, value: number, options: Options = {}): Value {
    const { unit = 'ms', ...rest } = options;
    return this.add(name, { kind: 'value', value: finite(name, 'value', value), unit, ...rest, met: meets(value, options.target, options.better) }) as Value;
  }

  /** Something the run established that is not a number (images identical, a verdict). */
  fact(name: string, value: string | boolean): Fact {
    return this.add(name, { kind: 'fact', value }) as Fact;
  }

  /** Writes the figures to `file` as JSON; nothing when none was recorded (a parent that re-executes itself). */
  write(file: string): void {
    if (Object.keys(this.figures).length === 0) return;
    fs.writeFileSync(file, `${JSON.stringify(this.figures, null, 2)}\n`);
  }
}

/** The figures of this section's process, written on exit when bench.ts asked for them. */
export const figures = new Figures();
const target = process.env.SEALROOT_BENCH_FIGURES;
if (target !== undefined && target !== '') process.on('exit', () => figures.write(target));

export interface SectionResult {
  exitCode: number | null;
  seconds: number;
  figures: Record<string, Figure>;
}

export interface BenchReport {
  format: 'sealroot-bench/1';
  started: string;
  finished: string;
  machine: { cpus: number; loadAverage: number[]; kernel: string; node: string };
  commit?: string;
  sections: Record<string, SectionResult & { status: 'ok' | 'failed' }>;
}

export function benchReport(input: { started: Date; finished: Date; commit?: string; sections: Record<string, SectionResult> }): BenchReport {
  const sections: BenchReport['sections'] = {};
  for (const [name, result] of Object.entries(input.sections)) {
    sections[name] = { status: result.exitCode === 0 ? 'ok' : 'failed', ...result };
  }
  return {
    format: 'sealroot-bench/1',
    started: input.started.toISOString(),
    finished: input.finished.toISOString(),
    machine: { cpus: os.availableParallelism(), loadAverage: os.loadavg(), kernel: os.release(), node: process.version },
    ...(input.commit === undefined ? {} : { commit: input.commit }),
    sections,
  };
}

/** Reads the figures a section's process wrote; {} when it wrote none. A file that is not JSON is an error. */
export function readSectionFigures(file: string): Record<string, Figure> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw error;
  }
  return JSON.parse(text) as Record<string, Figure>;
}

export class BenchUsageError extends Error {
  override name = 'BenchUsageError';
}

/**
 * `npm run bench [SECTION...] [--json FILE]`. npm takes `--json` as its own flag (npm_config_json=true) and
 * passes FILE on as an argument, so under npm the one argument that names no section is the file.
 */
export function parseBenchArgs(argv: readonly string[], env: Readonly<Record<string, string | undefined>>, available: readonly string[]): { sections: string[]; json?: string } {
  const positionals: string[] = [];
  let json: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--json') {
      json = argv[++i];
      if (json === undefined || json === '') throw new BenchUsageError('--json needs a FILE');
    } else if (arg.startsWith('--json=')) {
      json = arg.slice('--json='.length);
      if (json === '') throw new BenchUsageError('--json needs a FILE');
    } else if (arg.startsWith('-')) {
      throw new BenchUsageError(`unknown option '${arg}' (usage: npm run bench [SECTION...] [--json FILE])`);
    } else positionals.push(arg);
  }
  if (json === undefined && env.npm_config_json === 'true') {
    const files = positionals.filter((arg) => !available.includes(arg));
    if (files.length !== 1) throw new BenchUsageError(`npm took --json as its own flag; expected one FILE among the arguments, found ${files.length} (or run: npm run bench -- --json FILE)`);
    json = files[0];
    positionals.splice(positionals.indexOf(json!), 1);
  }
  const unknown = positionals.filter((arg) => !available.includes(arg));
  if (unknown.length > 0) throw new BenchUsageError(`unknown section ${unknown.map((name) => `'${name}'`).join(', ')} (sections: ${available.join(', ')})`);
  return { sections: positionals.length === 0 ? [...available] : available.filter((name) => positionals.includes(name)), ...(json === undefined ? {} : { json }) };
}
