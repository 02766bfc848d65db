// An independent listing of a source tree in the `composefs-info dump` format, made from lstat, the xattr
// syscalls and `fsverity digest` only (none of src/erofs), to check what `sealroot inspect` says about an image.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { getXattr, listXattrs } from '../../src/sys/xattr.ts';

/** The nanoseconds of a time in ns since the epoch, counting up from the (floored) second even before 1970. */
const nsec = (ns: bigint): bigint => ((ns % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n;
const join = (dir: Buffer, name: Buffer): Buffer => Buffer.concat([dir, Buffer.from('/'), name]);

function escape(bytes: Buffer, equal: boolean, loneDash: boolean): string {
  if (loneDash && bytes.length === 1 && bytes[0] === 0x2d) return '\\x2d';
  let out = '';
  for (const c of bytes) {
    if (c === 0x5c) out += '\\\\';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x09) out += '\\t';
    else if (c < 0x21 || c > 0x7e || (equal && c === 0x3d)) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += String.fromCharCode(c);
  }
  return out;
}

/** fs-verity SHA-256 digests from the fsverity tool, many files per call. */
function digests(files: Buffer[]): Map<string, string> {
  const result = new Map<string, string>();
  for (let i = 0; i < files.length; i += 200) {
    const batch = files.slice(i, i + 200);
    const run = spawnSync('fsverity', ['digest', '--hash-alg=sha256', '--block-size=4096', '--compact', ...batch.map((f) => f.toString('latin1'))], { encoding: 'latin1' });
    if (run.status !== 0) throw new Error(`fsverity digest failed: ${run.stderr}`);
    const lines = run.stdout.trim().split('\n');
    if (lines.length !== batch.length) throw new Error(`fsverity digest printed ${lines.length} lines for ${batch.length} files`);
    batch.forEach((file, j) => result.set(file.toString('latin1'), lines[j]!.trim()));
  }
  return result;
}

/** The size EROFS gives a directory as libcomposefs lays it out: 12-byte dirents + names in 4 KiB blocks, tail <= 2 KiB inline. */
function directorySize(names: Buffer[]): number {
  let blocks = 0;
  let used = 0;
  for (const name of names) {
    if (used + 12 + name.length > 4096) {
      blocks += 1;
      used = 0;
    }
    used += 12 + name.length;
  }
  if (used > 2048) return (blocks + 1) * 4096;
  return blocks * 4096 + used;
}

/** Listing lines; within a line the xattrs are sorted by name (the image lists inline ones before shared ones). */
export function listSource(root: string): string[] {
  const rootBytes = Buffer.from(root);
  const lines: { path: Buffer; file: Buffer; st: fs.BigIntStats; link?: Buffer }[] = [];
  const firstName = new Map<string, Buffer>();
  const firstFile = new Map<string, Buffer>();
  const big: Buffer[] = [];
  const walk = (file: Buffer, rel: Buffer): void => {
    const st = fs.lstatSync(file, { bigint: true });
    const key = `${st.dev}:${st.ino}`;
    const seen = firstName.get(key);
    if (seen !== undefined && !st.isDirectory()) {
      lines.push({ path: rel, file, st, link: seen });
      return;
    }
    firstName.set(key, rel.length === 0 ? Buffer.from('/') : rel);
    firstFile.set(key, file);
    lines.push({ path: rel, file, st });
    if (st.isFile() && st.size > 64n) big.push(file);
    if (!st.isDirectory()) return;
    const names = fs.readdirSync(file, { encoding: 'buffer' }).sort(Buffer.compare);
    for (const name of names) walk(join(file, name), join(rel, name));
  };
  walk(rootBytes, Buffer.alloc(0));
  const verity = digests(big);
  return lines.map(({ path, file, st, link }) => {
    const type = Number(st.mode) & 0o170000;
    let size = st.size;
    let payload: Buffer | undefined;
    let content: Buffer | undefined;
    let digest: string | undefined;
    if (st.isDirectory()) {
      const names = [...fs.readdirSync(file, { encoding: 'buffer' }), Buffer.from('.'), Buffer.from('..')];
      if (path.length === 0) {
        for (let i = 0; i < 256; i++) {
          const hex = Buffer.from(i.toString(16).padStart(2, '0'));
          if (!names.some((name) => name.equals(hex))) names.push(hex);
        }
      }
      size = BigInt(directorySize(names.sort(Buffer.compare)));
    } else if (st.isSymbolicLink()) {
      payload = fs.readlinkSync(file, { encoding: 'buffer' });
    } else if (st.isFile() && st.size > 0n) {
      if (st.size <= 64n) content = fs.readFileSync(file);
      else {
        digest = verity.get(firstFile.get(`${st.dev}:${st.ino}`)!.toString('latin1'))!;
        payload = Buffer.from(`${digest.slice(0, 2)}/${digest.slice(2)}`);
      }
    } else if (type !== 0o020000 && type !== 0o060000) {
      size = 0n;
    }
    const xattrs = listXattrs(file).map((name) => {
      const value = getXattr(file, name);
      return `${escape(name, true, false)}=${escape(value, true, false)}`;
    }).sort();
    const fields = [
      escape(path.length === 0 ? Buffer.from('/') : path, false, false), size.toString(),
      `${link === undefined ? '' : '@'}${Number(st.mode).toString(8)}`, st.nlink.toString(), st.uid.toString(), st.gid.toString(),
      (type === 0o020000 || type === 0o060000 ? st.rdev & 0xffffffffn : 0n).toString(),
      `${(st.mtimeNs - nsec(st.mtimeNs)) / 1_000_000_000n}.${nsec(st.mtimeNs)}`,
      link !== undefined ? escape(link, false, true) : payload === undefined ? '-' : escape(payload, false, true),
      content === undefined ? '-' : escape(content, false, true),
      digest ?? '-',
      ...xattrs,
    ];
    return fields.join(' ');
  });
}

/** Sorts the xattr fields of each dump line (fields after the 11th), for comparison with listSource. */
export function normalizeDump(text: string): string[] {
  return text.split('\n').filter((line) => line.length > 0).map((line) => {
    const fields = line.split(' ');
    return [...fields.slice(0, 11), ...fields.slice(11).sort()].join(' ');
  });
}
