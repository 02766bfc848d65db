// Where the QEMU tier keeps its inputs and outputs: everything it downloads or builds lives under .cache/qemu
// (ignored by git, reused between runs).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const CACHE = path.join(ROOT, '.cache/qemu');
export const SEALROOT_DIST = path.join(ROOT, 'dist/sealroot');

let staged: string | undefined;

/**
 * The sealroot executable the tests use: a copy of dist/sealroot named by its content hash, checked to run. The
 * copy keeps a run consistent if dist/ is rebuilt meanwhile, and the name keys every cache built from it.
 */
export function sealrootBinary(): string {
  if (staged !== undefined) return staged;
  if (!fs.existsSync(SEALROOT_DIST)) throw new Error(`${SEALROOT_DIST} is missing: run npm run build`);
  const content = fs.readFileSync(SEALROOT_DIST);
  const hash = createHash('sha256').update(content).digest('hex').slice(0, 16);
  const dir = path.join(CACHE, 'bin');
  const file = path.join(dir, `sealroot-${hash}`);
  if (!fs.existsSync(file)) {
    pruneCache(dir, () => false);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(`${file}.tmp`, content, { mode: 0o755 });
    execFileSync(`${file}.tmp`, ['--version'], { stdio: 'ignore' });
    fs.renameSync(`${file}.tmp`, file);
  }
  staged = file;
  return file;
}

export interface Kernel {
  dir: string;
  version: string;
  vmlinuz: string;
  modules: string;
}

/** Runs qemu/fetch-kernel (a no-op once cached) and describes the kernel it prints. */
export function fetchKernel(): Kernel {
  const dir = execFileSync(path.join(ROOT, 'qemu/fetch-kernel'), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  const version = fs.readFileSync(path.join(dir, 'KVER'), 'utf8').trim();
  return { dir, version, vmlinuz: path.join(dir, 'vmlinuz'), modules: path.join(dir, 'lib/modules', version) };
}

/** Fails loudly, naming every missing tool, rather than letting a scenario fail in a confusing way. */
export function requireHostTools(tools: readonly string[]): void {
  const missing = tools.filter((tool) => {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length > 0) {
    throw new Error(`missing host tools: ${missing.join(', ')} (run ./scripts/setup; packages in scripts/apt-packages.txt)`);
  }
}

export function freshDir(dir: string): string {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * Removes the entries of a cache directory other than `keep` (older builds of the same thing) that have not been
 * touched for an hour: another run in the same tree may still be using a recent one.
 */
export function pruneCache(dir: string, keep: (name: string) => boolean, minAgeMs = 3_600_000): void {
  if (!fs.existsSync(dir)) return;
  for (const name of fs.readdirSync(dir)) {
    const entry = path.join(dir, name);
    let mtime: number;
    try {
      mtime = fs.lstatSync(entry).mtimeMs;
    } catch {
      continue;
    }
    if (!keep(name) && Date.now() - mtime > minAgeMs) fs.rmSync(entry, { recursive: true, force: true });
  }
}
