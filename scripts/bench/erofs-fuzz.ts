// Fuzzing the strict composefs image reader: >= 100k mutated valid images (bit flips, boundary integers,
// truncation), each must be refused with StepError('validate-image') or read completely; anything else (a
// crash, a RangeError, a hang) fails the run with the seed and case number to replay it.
// Reference, in the same run on a sample of the same mutated images: erofs-utils' fsck.erofs --extract
// (throughput ratio and verdict agreement) and, as root, the kernel itself: every image the reader accepted
// is mounted (loop + erofs) and fully walked and read; a kernel error there is a reader gap.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { StepError } from '../../src/errors.ts';
import { dumpImage } from '../../src/erofs/dump.ts';
import { ErofsReader } from '../../src/erofs/reader.ts';
import { validateImage } from '../../src/erofs/validate.ts';
import { writeImage } from '../../src/erofs/writer.ts';
import { dir, file, sampleTree, special, symlink, xattr } from '../../test/unit/erofs-trees.ts';
import { mutate, Random } from '../../test/unit/erofs-mutate.ts';
import { figures } from './lib/figures.ts';

const CASES = Number(process.env.EROFS_FUZZ_CASES ?? 100_000);
const SAMPLE = Number(process.env.EROFS_FUZZ_SAMPLE ?? 400);
const SEED = Number(process.env.EROFS_FUZZ_SEED ?? 20251123);

function tree() {
  const entries: Record<string, ReturnType<typeof file>> = {};
  for (let i = 0; i < 40; i++) entries[`f${i}`] = file(i % 2 === 0 ? `small ${i}` : 'x'.repeat(100 + i), { xattrs: i % 5 === 0 ? [xattr('user.s', 'shared')] : [] });
  const linked = file('y'.repeat(300));
  return dir({
    ...entries,
    sub: dir({ a: file('a'), b: symlink('../f1'), deeper: dir({ c: file('c'.repeat(70)), d: linked }) }, { xattrs: [xattr('trusted.t', 'v')] }),
    link: symlink('f0', { xattrs: [xattr('security.x', 'y')] }),
    long: symlink('l'.repeat(2000)),
    dev: special('chr', 259), fifo: special('fifo'), d2: linked,
    owned: file('o', { uid: 100_000, gid: 7, mtimeSec: 1_800_000_000n, mtimeNsec: 5 }),
  }, { xattrs: [xattr('user.s', 'shared'), xattr('user.root', 'r')] });
}

/** Offsets of the structures of a valid image (every inode, directory data, shared xattrs): mutation targets. */
function structureOffsets(buf: Buffer): number[] {
  const reader = new ErofsReader(buf);
  const offsets = new Set<number>([1024]);
  const queue = [reader.inode(reader.rootNid)];
  const seen = new Set<number>();
  for (let i = 0; i < queue.length; i++) {
    const node = queue[i]!;
    if (seen.has(node.nid)) continue;
    seen.add(node.nid);
    offsets.add(node.offset);
    if (node.headSize > 64) offsets.add(node.offset + 64);
    if (node.blockCount > 0) offsets.add(node.firstBlock * 4096);
    if ((node.mode & 0o170000) === 0o040000) {
      for (const entry of reader.readDir(node)) if (entry.name !== '.' && entry.name !== '..') queue.push(reader.inode(entry.nid));
    }
  }
  offsets.add(reader.info.superblock.xattrBlockAddress * 4096);
  return [...offsets].sort((a, b) => a - b);
}

// Two images: a small tree, and the unit tests' sample (multi-block directories, hard links, shared xattrs, ACL).
const bases = [writeImage(tree(), { algorithm: 'sha256' }).image, writeImage(sampleTree(), { algorithm: 'sha256' }).image].map((image) => {
  validateImage(image);
  return { image, targets: structureOffsets(image) };
});

type Verdict = 'accepted' | 'refused';
function check(buf: Buffer, index: number): Verdict {
  try {
    validateImage(buf);
    dumpImage(new ErofsReader(buf), () => {});
    return 'accepted';
  } catch (error) {
    if (error instanceof StepError && error.step === 'validate-image') return 'refused';
    if (error instanceof Error && error.name === 'ImageError') return 'refused';
    console.error(`FAIL case ${index} (EROFS_FUZZ_SEED=${SEED}): ${error instanceof Error ? error.stack : String(error)}`);
    process.exit(1);
  }
}

const random = new Random(SEED);
const counts = { accepted: 0, refused: 0 };
const sample: { buf: Buffer; verdict: Verdict }[] = [];
const sampleEvery = Math.max(1, Math.floor(CASES / SAMPLE));
let slowest = 0;
const started = performance.now();
for (let i = 0; i < CASES; i++) {
  const base = bases[i % bases.length]!;
  const buf = mutate(base.image, random, base.targets);
  const t = performance.now();
  const verdict = check(buf, i);
  slowest = Math.max(slowest, performance.now() - t);
  counts[verdict] += 1;
  if (i % sampleEvery === 0) sample.push({ buf, verdict });
}
const elapsed = (performance.now() - started) / 1000;
console.log(`images: ${bases.map((b) => `${b.image.length} bytes (${b.targets.length} structures)`).join(', ')}; cases: ${CASES} (seed ${SEED}); ${counts.refused} refused, ${counts.accepted} accepted and read fully; no crash`);
console.log(`sealroot reader: ${(CASES / elapsed).toFixed(0)} cases/s (${elapsed.toFixed(1)} s, slowest case ${slowest.toFixed(1)} ms)`);
figures.value('cases', CASES, { unit: 'cases', note: `seed ${SEED}` });
figures.value('refused', counts.refused, { unit: 'cases' });
figures.value('accepted', counts.accepted, { unit: 'cases' });
figures.value('reader throughput', CASES / elapsed, { unit: 'cases/s', better: 'higher' });
figures.value('slowest case', slowest);

// Reference: fsck.erofs on the sample, one process per image.
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-erofs-fuzz-'));
try {
  const agreement = { both: 0, bothRefused: 0, weRefuseFsckAccepts: 0, weAcceptFsckRefuses: 0 };
  const fsckStarted = performance.now();
  let ours = 0;
  sample.forEach(({ buf, verdict }, i) => {
    const imagePath = path.join(work, `case-${i}.img`);
    fs.writeFileSync(imagePath, buf);
    const t = performance.now();
    check(buf, -i);
    ours += performance.now() - t;
    const fsck = spawnSync('fsck.erofs', ['--extract', imagePath], { stdio: 'ignore', timeout: 20_000 });
    const fsckAccepts = fsck.status === 0;
    if (verdict === 'accepted' && fsckAccepts) agreement.both += 1;
    else if (verdict === 'refused' && !fsckAccepts) agreement.bothRefused += 1;
    else if (verdict === 'refused') agreement.weRefuseFsckAccepts += 1;
    else {
      agreement.weAcceptFsckRefuses += 1;
      fs.copyFileSync(imagePath, path.join(os.tmpdir(), `sealroot-fuzz-disagreement-${i}.img`));
    }
  });
  const fsckSeconds = (performance.now() - fsckStarted) / 1000 - ours / 1000;
  console.log(`fsck.erofs --extract on ${sample.length} sampled cases: ${(sample.length / fsckSeconds).toFixed(0)} cases/s; `
    + `sealroot on the same: ${(sample.length / (ours / 1000)).toFixed(0)} cases/s; ratio sealroot/fsck.erofs ${((sample.length / (ours / 1000)) / (sample.length / fsckSeconds)).toFixed(1)}x`);
  figures.comparison('throughput on the sample', sample.length / (ours / 1000), sample.length / fsckSeconds, 'fsck.erofs --extract', { unit: 'cases/s', better: 'higher', note: `${sample.length} sampled cases` });
  figures.value('verdicts both accept', agreement.both, { unit: 'cases' });
  figures.value('verdicts both refuse', agreement.bothRefused, { unit: 'cases' });
  figures.value('verdicts only sealroot refuses', agreement.weRefuseFsckAccepts, { unit: 'cases' });
  figures.value('verdicts only fsck.erofs refuses', agreement.weAcceptFsckRefuses, { unit: 'cases' });
  console.log(`verdicts: both accept ${agreement.both}, both refuse ${agreement.bothRefused}, only sealroot refuses ${agreement.weRefuseFsckAccepts}, `
    + `only fsck.erofs refuses ${agreement.weAcceptFsckRefuses}${agreement.weAcceptFsckRefuses > 0 ? ' (copies in /tmp/sealroot-fuzz-disagreement-*.img)' : ''}`);

  // The kernel on every sampled image the reader accepted.
  if (process.getuid?.() === 0) {
    const mnt = path.join(work, 'mnt');
    fs.mkdirSync(mnt);
    let mounted = 0;
    let kernelErrors = 0;
    sample.forEach(({ verdict }, i) => {
      if (verdict !== 'accepted') return;
      const imagePath = path.join(work, `case-${i}.img`);
      const mount = spawnSync('mount', ['-t', 'erofs', '-o', 'ro,loop', imagePath, mnt], { encoding: 'utf8' });
      if (mount.status !== 0) {
        kernelErrors += 1;
        console.log(`kernel refused accepted case ${i}: ${mount.stderr.trim()}`);
        return;
      }
      mounted += 1;
      const walk = spawnSync('sh', ['-c', 'find . -print0 | xargs -0 stat > /dev/null && find . -type f -print0 | xargs -0 cat > /dev/null && find . -type l -print0 | xargs -0 readlink > /dev/null && getfattr -R -h -d -m - . > /dev/null'], { cwd: mnt, encoding: 'utf8' });
      if (walk.status !== 0) {
        kernelErrors += 1;
        console.log(`kernel error walking accepted case ${i}: ${walk.stderr.trim().split('\n')[0]}`);
      }
      spawnSync('umount', [mnt]);
    });
    console.log(`kernel: ${mounted} accepted sample images mounted and walked, ${kernelErrors} with errors`);
    figures.value('kernel mounted and walked', mounted, { unit: 'images' });
    figures.value('kernel errors', kernelErrors, { unit: 'images', target: 0 });
  } else {
    console.log('kernel check skipped: not root');
  }
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
