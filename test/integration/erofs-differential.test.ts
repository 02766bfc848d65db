// Differential test of the image writer: random trees, written as dumps, made into images by
// `sealroot mkimage --from-file` and by libcomposefs' `mkcomposefs --from-file`; the bytes must be equal.
// Random name lengths, directory sizes around the block and half-block limits, xattr sets (shared and not,
// up to ~4 KiB per inode), symlink targets up to 4095 bytes, hard links, whiteouts, owners and times.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseDump } from '../../src/erofs/dumpfile.ts';
import { writeImage } from '../../src/erofs/writer.ts';
import { Random } from '../unit/erofs-mutate.ts';
import { composefsTools, runTool } from './erofs-tools.ts';

const TREES = Number(process.env.EROFS_DIFF_TREES ?? 40);

const NAME_CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789._-';

/** A random dump (the escaped text format) and nothing else: both tools read the same lines. */
function randomDump(random: Random): string {
  const pick = <T>(items: readonly T[]): T => items[random.below(items.length)]!;
  const escapeByte = (byte: number): string => `\\x${byte.toString(16).padStart(2, '0')}`;
  /** A name of `length` bytes before the `-N` suffix added below (so at most 255 bytes in all). */
  const name = (): string => {
    const length = pick([1, 2, 3, 8, 20, 60, 120, 200, 249, 1 + random.below(249)]);
    let out = '';
    for (let i = 0; i < length; i++) out += random.next() < 0.03 ? escapeByte(pick([0x20, 0x3d, 0x5c, 0x0a, 0xe9, 0xff])) : pick([...NAME_CHARS]);
    return out === '.' || out === '..' ? `${out}x` : out;
  };
  const baseTime = 1_600_000_000;
  const minTime = `${baseTime}.${random.below(1000)}`;
  const time = (): string => (random.next() < 0.4 ? minTime : `${baseTime + random.below(1000)}.${random.below(1_000_000_000)}`);
  const owner = (): string => pick(['0 0', '0 0', '1000 1000', '65535 65535', '65536 0', '4000000000 7']);
  const sharedValues = ['shared-a', 'shared-b', 'x'.repeat(300)];
  const xattrs = (): string[] => {
    const out: string[] = [];
    const count = pick([0, 0, 0, 1, 2, 3, 6]);
    const used = new Set<string>();
    for (let i = 0; i < count; i++) {
      const key = `${pick(['user.', 'trusted.', 'security.', 'trusted.overlay.'])}${pick(['a', 'b', 'c', 'long-attribute-name', 'k'])}`;
      if (used.has(key)) continue;
      used.add(key);
      const value = random.next() < 0.5 ? pick(sharedValues) : 'v'.repeat(random.below(pick([10, 200, 1500])));
      out.push(`${key}=${value.replaceAll('=', '\\x3d')}`);
    }
    return out;
  };
  const digest = (n: number): string => createHash('sha256').update(`${n}`).digest('hex');
  const lines: string[] = [`/ 4096 40755 2 ${owner()} 0 ${minTime} - - - ${xattrs().join(' ')}`.trimEnd()];
  const files: string[] = [];
  const dirs = [''];
  const entries = 20 + random.below(pick([50, 300, 700]));
  for (let i = 0; i < entries; i++) {
    const parent = pick(dirs);
    const p = `${parent}/${name()}-${i}`;
    const kind = random.below(100);
    const meta = `${owner()} `;
    let line: string;
    if (kind < 12) {
      line = `${p} 4096 ${pick(['40755', '40700', '41777', '42775'])} 2 ${meta}0 ${time()} - - -`;
      dirs.push(p);
    } else if (kind < 22) {
      const target = 't'.repeat(pick([1, 10, 100, 1000, 3000, 4000, 4095, 1 + random.below(4095)]));
      line = `${p} ${target.length} 120777 1 ${meta}0 ${time()} ${target} - -`;
    } else if (kind < 27 && files.length > 0) {
      line = `${p} 0 @100644 1 0 0 0 0.0 ${pick(files)} - -`;
    } else if (kind < 30) {
      line = `${p} 0 ${pick(['20000', '20644'])} 1 ${meta}0 ${time()} - - -`; // a whiteout
    } else if (kind < 33) {
      line = `${p} 0 ${pick(['20644', '60644'])} 1 ${meta}${random.below(2 ** 32)} ${time()} - - -`;
    } else if (kind < 36) {
      line = `${p} 0 ${pick(['10644', '140644'])} 1 ${meta}0 ${time()} - - -`;
    } else if (kind < 60) {
      const size = random.below(65);
      line = `${p} ${size} ${pick(['100644', '100600', '104755', '100000'])} 1 ${meta}0 ${time()} - ${size === 0 ? '-' : 'c'.repeat(size)} -`;
      files.push(p);
    } else {
      const size = 65 + random.below(pick([100, 5000, 2 ** 31]));
      const d = digest(i);
      line = `${p} ${size} 100644 ${1 + random.below(3)} ${meta}0 ${time()} ${d.slice(0, 2)}/${d.slice(2)} - ${d}`;
      files.push(p);
    }
    const extra = xattrs();
    lines.push(extra.length === 0 ? line : `${line} ${extra.join(' ')}`);
  }
  return `${lines.join('\n')}\n`;
}

test(`${TREES} random trees: mkimage --from-file writes the bytes mkcomposefs --from-file writes`, () => {
  const tools = composefsTools();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-erofs-diff-'));
  try {
    const seed = Number(process.env.EROFS_DIFF_SEED ?? 1234);
    const random = new Random(seed);
    for (let i = 0; i < TREES; i++) {
      const dump = path.join(work, `tree-${i}.dump`);
      fs.writeFileSync(dump, randomDump(random));
      const theirs = path.join(work, `theirs-${i}.cfs`);
      runTool(tools.mkcomposefs, ['--from-file', dump, theirs]);
      // Ours in this process (the CLI path is covered by erofs-mkcomposefs.test.ts).
      const b = writeImage(parseDump(fs.readFileSync(dump, 'latin1')), { algorithm: 'sha256' }).image;
      const a = fs.readFileSync(theirs);
      if (!a.equals(b)) {
        const kept = path.join(os.tmpdir(), `sealroot-erofs-diff-seed${seed}-tree${i}.dump`);
        fs.copyFileSync(dump, kept);
        assert.unreachable(`tree ${i} (seed ${seed}): images differ (${a.length} vs ${b.length} bytes, first at ${a.findIndex((x, j) => x !== b[j])}); dump kept in ${kept}`);
      }
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
});

test.run();
