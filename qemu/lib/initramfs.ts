// A minimal initramfs built by hand (busybox + what the caller adds), as a cpio newc archive compressed with zstd.
// Used as the fast variant of the guest's initramfs and for the disk preparation boot.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CACHE, pruneCache, type Kernel } from './paths.ts';

export const BUSYBOX = '/bin/busybox';

export interface InitramfsSpec {
  name: string;
  kernel: Kernel;
  /** Executables copied with every library ldd lists (and the dynamic loader). */
  binaries: { source: string; target: string }[];
  /** Kernel modules to load at start, in dependency order (resolved with modprobe --show-depends). */
  modules: string[];
  /** Extra files: target path -> content. */
  files: Record<string, { content: string | Buffer; mode?: number }>;
  init: string;
  compress?: string[];
}

/** The shared libraries an executable needs, as absolute paths (ldd output), including the dynamic loader. */
export function sharedLibraries(binary: string): string[] {
  let out: string;
  try {
    out = execFileSync('ldd', [binary], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    if (/not a dynamic executable/.test(String((error as { stderr?: string }).stderr ?? ''))) return [];
    throw error;
  }
  const libraries: string[] = [];
  for (const line of out.split('\n')) {
    const match = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (match !== null) libraries.push(match[1]);
  }
  return libraries;
}

/** Module files (relative to the kernel's module dir) to insmod in order so that every module in `names` loads. */
export function moduleLoadOrder(kernel: Kernel, names: readonly string[]): string[] {
  const order: string[] = [];
  for (const name of names) {
    const out = execFileSync('modprobe', ['-d', kernel.dir, '-S', kernel.version, '--show-depends', name], { encoding: 'utf8' });
    for (const line of out.split('\n')) {
      const match = /^insmod (\S+)/.exec(line);
      if (match === null) continue;
      const relative = path.relative(kernel.modules, match[1]);
      if (!order.includes(relative)) order.push(relative);
    }
  }
  return order;
}

function fingerprint(spec: InitramfsSpec, sources: string[]): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ ...spec, kernel: spec.kernel.version, files: Object.keys(spec.files) }));
  for (const [target, file] of Object.entries(spec.files)) hash.update(target).update(file.content);
  for (const source of sources) {
    const stat = fs.statSync(source);
    hash.update(`${source}:${stat.size}:${stat.mtimeMs}`);
  }
  return hash.digest('hex').slice(0, 16);
}

function copyInto(root: string, source: string, target: string): void {
  const destination = path.join(root, target);
  fs.mkdirSync(path.dirname(destination), { recursive: true });
  fs.copyFileSync(fs.realpathSync(source), destination);
  fs.chmodSync(destination, fs.statSync(fs.realpathSync(source)).mode & 0o7777);
}

/** Builds (or reuses from the cache) the initramfs; returns its path. */
export function buildInitramfs(spec: InitramfsSpec): string {
  const libraries = [...new Set(spec.binaries.flatMap((binary) => sharedLibraries(binary.source)))];
  const modules = spec.modules.map((module) => path.join(spec.kernel.modules, module));
  const key = fingerprint(spec, [BUSYBOX, ...spec.binaries.map((binary) => binary.source), ...libraries, ...modules]);
  const out = path.join(CACHE, 'initramfs', `${spec.name}-${key}.cpio.zst`);
  if (fs.existsSync(out)) return out;

  pruneCache(path.join(CACHE, 'initramfs'), (name) => !name.startsWith(`${spec.name}-`));
  const stage = path.join(CACHE, 'initramfs', `${spec.name}.stage`);
  fs.rmSync(stage, { recursive: true, force: true });
  for (const dir of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'dev', 'proc', 'sys', 'run', 'tmp', 'sysroot', 'etc']) {
    fs.mkdirSync(path.join(stage, dir), { recursive: true });
  }
  copyInto(stage, BUSYBOX, 'bin/busybox');
  fs.symlinkSync('busybox', path.join(stage, 'bin/sh'));
  for (const binary of spec.binaries) copyInto(stage, binary.source, binary.target);
  for (const library of libraries) copyInto(stage, library, library);
  for (const module of spec.modules) copyInto(stage, path.join(spec.kernel.modules, module), path.join('lib/modules', module));
  fs.writeFileSync(path.join(stage, 'etc/modules.order'), spec.modules.map((module) => `${module}\n`).join(''));
  for (const [target, file] of Object.entries(spec.files)) {
    fs.mkdirSync(path.dirname(path.join(stage, target)), { recursive: true });
    fs.writeFileSync(path.join(stage, target), file.content, { mode: file.mode ?? 0o644 });
  }
  fs.writeFileSync(path.join(stage, 'init'), spec.init, { mode: 0o755 });

  fs.mkdirSync(path.dirname(out), { recursive: true });
  const compress = (spec.compress ?? ['zstd', '-T0', '-10', '-q']).join(' ');
  execFileSync('sh', ['-c', `cd "${stage}" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 | ${compress} > "${out}.tmp"`]);
  fs.renameSync(`${out}.tmp`, out);
  fs.rmSync(stage, { recursive: true, force: true });
  return out;
}
