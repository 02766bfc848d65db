// Test fixture: a composefs-style image made with the standard tools, for the mount and boot tests until (and
// independently of) `sealroot mkimage`. Regular files with content go to objects/XX/<rest> named by their
// fs-verity digest (fsverity digest); the image tree holds a sparse placeholder of the same size carrying
// trusted.overlay.metacopy (version 0, len 36, flags 0, algo 1, digest) and trusted.overlay.redirect (/XX/rest),
// then mkfs.erofs --chunksize=4096 makes the EROFS image (holes cost no space). By default `sealroot mkimage`.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeFully } from '../../src/sys/io.ts';
import { addSeals, IMAGE_SEALS, memfdCreate } from '../../src/sys/memfd.ts';
import { check, requireTools, ROOT } from './tools.ts';

export type TreeEntry = string | Buffer | { file: string | Buffer; mode: number } | { symlink: string } | { dir: true; mode?: number };
/** Relative path -> content (string/Buffer: a regular file), a symlink, or a directory. */
export type TreeSpec = Record<string, TreeEntry>;

export interface Fixture {
  image: string;
  objects: string;
  /** `sha256:<hex>` of the image file (fsverity digest). */
  digest: string;
  /** The plain tree (what the mounted overlay must show). */
  source: string;
}

export function fsverityDigest(file: string, algorithm: 'sha256' | 'sha512' = 'sha256'): string {
  const out = check('fsverity', ['digest', `--hash-alg=${algorithm}`, '--block-size=4096', file]);
  return out.trim().split(/\s+/)[0]!;
}

function metacopy(hex: string): string {
  return `0x00240001${hex}`;
}

/** Writes `spec` as a plain tree under `dir`. */
export function writeTree(dir: string, spec: TreeSpec): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const [rel, entry] of Object.entries(spec).sort(([a], [b]) => a.localeCompare(b))) {
    const file = path.join(dir, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    if (typeof entry === 'string' || Buffer.isBuffer(entry)) fs.writeFileSync(file, entry);
    else if ('file' in entry) {
      fs.writeFileSync(file, entry.file);
      fs.chmodSync(file, entry.mode);
    } else if ('symlink' in entry) fs.symlinkSync(entry.symlink, file);
    else fs.mkdirSync(file, { recursive: true, mode: entry.mode ?? 0o755 });
  }
}

/**
 * Builds source/ (the plain tree), objects/ and the image under `dir` from `spec`: with `sealroot mkimage` (the
 * default, run from the sources), or with the standard tools (mkfs.erofs over placeholders carrying the overlay
 * xattrs), an image the project's writer had no part in.
 */
export function makeComposefsFixture(
  dir: string, spec: TreeSpec, options: { imageName?: string; builder?: 'mkimage' | 'mkfs.erofs'; hashAlg?: 'sha256' | 'sha512' } = {},
): Fixture {
  const source = path.join(dir, 'source');
  const objects = path.join(dir, 'objects');
  const image = path.join(dir, options.imageName ?? 'image.cfs');
  writeTree(source, spec);
  fs.mkdirSync(objects, { recursive: true });
  if ((options.builder ?? 'mkimage') === 'mkimage') {
    requireTools('fsverity');
    const hashAlg = options.hashAlg ?? 'sha256';
    check(path.join(ROOT, 'node_modules/.bin/node'), [path.join(ROOT, 'src/cli/main.ts'), 'mkimage', `--digest-store=${objects}`, '--hash-alg', hashAlg, source, image]);
    return { image, objects, digest: fsverityDigest(image, hashAlg), source };
  }
  requireTools('mkfs.erofs', 'fsverity', 'setfattr');
  const meta = path.join(dir, 'meta');
  fs.cpSync(source, meta, { recursive: true, verbatimSymlinks: true });
  const walk = (rel: string): void => {
    for (const name of fs.readdirSync(path.join(meta, rel))) {
      const relPath = path.join(rel, name);
      const metaFile = path.join(meta, relPath);
      const stat = fs.lstatSync(metaFile);
      if (stat.isDirectory()) walk(relPath);
      else if (stat.isFile() && stat.size > 0) {
        const digest = fsverityDigest(metaFile).replace(/^sha256:/, '');
        const objectDir = path.join(objects, digest.slice(0, 2));
        fs.mkdirSync(objectDir, { recursive: true });
        const object = path.join(objectDir, digest.slice(2));
        if (!fs.existsSync(object)) fs.copyFileSync(metaFile, object);
        fs.truncateSync(metaFile, 0);
        fs.truncateSync(metaFile, stat.size);
        check('setfattr', ['-n', 'trusted.overlay.metacopy', '-v', metacopy(digest), metaFile]);
        check('setfattr', ['-n', 'trusted.overlay.redirect', '-v', `/${digest.slice(0, 2)}/${digest.slice(2)}`, metaFile]);
      }
    }
  };
  walk('.');
  check('mkfs.erofs', ['--quiet', '--chunksize=4096', '-T0', '--all-root', image, meta]);
  return { image, objects, digest: fsverityDigest(image), source };
}

/** Every path under `root` with type, mode (permission bits), size, symlink target and SHA-256 of contents. */
export function listTree(root: string): string[] {
  const lines: string[] = [];
  const walk = (rel: string): void => {
    for (const name of fs.readdirSync(path.join(root, rel)).sort()) {
      const relPath = path.join(rel, name);
      const file = path.join(root, relPath);
      const stat = fs.lstatSync(file);
      const mode = (stat.mode & 0o7777).toString(8);
      if (stat.isDirectory()) {
        lines.push(`d ${relPath} ${mode}`);
        walk(relPath);
      } else if (stat.isSymbolicLink()) lines.push(`l ${relPath} -> ${fs.readlinkSync(file)}`);
      else if (stat.isFile()) {
        const hash = createHash('sha256').update(fs.readFileSync(file)).digest('hex');
        lines.push(`f ${relPath} ${mode} ${stat.size} ${hash}`);
      } else lines.push(`? ${relPath}`);
    }
  };
  walk('.');
  return lines;
}

/**
 * The system state a failed mount must leave unchanged: the mount points below `under` (where these tests mount
 * everything) and the loop devices backed by a sealroot memfd (what mountComposefs attaches). Other tests running
 * at the same time (their own mounts and loop devices) are not counted.
 */
export interface SystemSnapshot {
  under: string;
  mounts: string[];
  loops: string[];
}

export function snapshot(under = '/'): SystemSnapshot {
  const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l !== '')
    .map((line) => {
      const [before, after = ''] = line.split(' - ');
      const fields = before!.split(' ');
      return `${fields[4]} ${after.split(' ').slice(0, 2).join(' ')}`;
    }).filter((m) => m.startsWith(under === '/' ? '/' : `${under}/`)).sort();
  const loops = fs.readdirSync('/sys/block').filter((name) => name.startsWith('loop'))
    .map((name) => {
      try {
        return `${name} ${fs.readFileSync(`/sys/block/${name}/loop/backing_file`, 'utf8').trim()}`;
      } catch {
        return undefined; // not bound (no backing_file)
      }
    })
    .filter((loop): loop is string => loop !== undefined && loop.includes('memfd:sealroot')).sort();
  return { under, mounts, loops };
}

/** Waits (autoclear detaches asynchronously) until the state equals `before`; returns the difference left. */
export function leftoversSince(before: SystemSnapshot, timeoutMs = 3000): string[] {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const now = snapshot(before.under);
    const extra = [
      ...now.mounts.filter((m) => !before.mounts.includes(m)).map((m) => `mount ${m}`),
      ...before.mounts.filter((m) => !now.mounts.includes(m)).map((m) => `gone mount ${m}`),
      ...now.loops.filter((l) => !before.loops.includes(l)).map((l) => `loop ${l}`),
    ];
    if (extra.length === 0 || Date.now() > deadline) return extra;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 25);
  }
}

/** Copies a file into a sealed memfd (what the loader hands over), for mount tests that do not test loading. */
export function sealedCopy(file: string): number {
  const fd = memfdCreate('sealroot-test-image');
  writeFully(fd, fs.readFileSync(file));
  addSeals(fd, IMAGE_SEALS);
  return fd;
}

/**
 * A scratch directory that is its own private mount (a bind mount onto itself): every mount a test makes below it stays out of other mount
 * namespaces even on hosts whose / is shared (systemd), and moving those mounts is allowed (the kernel refuses to
 * move a mount whose parent is shared). Release it with releaseScratch.
 */
export function privateScratch(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  check('mount', ['--bind', dir, dir]);
  check('mount', ['--make-private', dir]);
  return dir;
}

export function releaseScratch(dir: string): void {
  check('umount', ['--lazy', dir]);
  fs.rmSync(dir, { recursive: true, force: true });
}
