// Shared by the integration and qemu tiers: a tool that is missing fails the test loudly, never skips it.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const SEALROOT_BIN = path.join(ROOT, 'dist/sealroot');

/** Throws naming every missing command (install them with scripts/setup). */
export function requireTools(...names: string[]): void {
  const missing = names.filter((name) => spawnSync('sh', ['-c', `command -v "${name}"`]).status !== 0);
  if (missing.length > 0) throw new Error(`missing tools: ${missing.join(', ')} (scripts/setup installs them)`);
}

export function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error('this test needs root');
}

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function run(file: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string } = {}): RunResult {
  const result = spawnSync(file, args, { encoding: 'utf8', env: options.env ?? process.env, cwd: options.cwd, input: options.input, maxBuffer: 1 << 26 });
  if (result.error !== undefined) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Runs a command that must succeed; its stderr is in the error when it does not. */
export function check(file: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string } = {}): string {
  const result = run(file, args, options);
  if (result.status !== 0) throw new Error(`${file} ${args.join(' ')} exited ${result.status}: ${result.stderr.trim()}`);
  return result.stdout;
}
