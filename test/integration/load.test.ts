// The image loader on the host: sealed memfd, digest, and every refusal (each must also close its memfd).
// The kernel fs-verity fast path cannot run here (no fs-verity on the host): its decision logic is unit-tested and
// the real path is exercised in QEMU.
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SysError } from '../../src/errors.ts';
import { loadImage, type LoadImageOptions } from '../../src/image/load.ts';
import { closeFd, writeFully } from '../../src/sys/io.ts';
import { getSeals, IMAGE_SEALS } from '../../src/sys/memfd.ts';
import { mapSharedWritable } from '../../src/sys/mmap.ts';
import { parseDigest, type Digest } from '../../src/verity/digest.ts';
import { HashPool } from '../../src/verity/pool.ts';
import { refusedLoad } from '../helpers/image-load.ts';
import { requireTools } from '../helpers/tools.ts';

requireTools('fsverity', 'zstd', 'mkfifo');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-load-'));

function file(name: string, data: Uint8Array): string {
  const target = path.join(dir, name);
  fs.writeFileSync(target, data);
  return target;
}

function fsverityDigest(target: string, algorithm = 'sha256'): Digest {
  return parseDigest(execFileSync('fsverity', ['digest', `--hash-alg=${algorithm}`, target], { encoding: 'utf8' }).split(' ')[0]!);
}


async function loadsAndSeals(options: LoadImageOptions, data: Uint8Array): Promise<void> {
  const image = await loadImage(options);
  try {
    assert.is(image.size, data.length);
    assert.is(image.seals & IMAGE_SEALS, IMAGE_SEALS);
    assert.is(getSeals(image.fd) & IMAGE_SEALS, IMAGE_SEALS, 'the seals read back from the fd itself');
    assert.is(image.method, 'userspace');
    // A hugetlb memfd is whole huge pages (2 MiB here): the image, then zeros.
    const held = image.backing === 'hugetlb' ? Math.ceil(data.length / HUGE_PAGE) * HUGE_PAGE : data.length;
    assert.is(fs.fstatSync(image.fd).size, held);
    const copy = Buffer.alloc(held + 1);
    assert.is(fs.readSync(image.fd, copy, 0, copy.length, 0), held);
    assert.ok(copy.subarray(0, data.length).equals(data), 'the memfd holds the image bytes');
    assert.ok(copy.subarray(data.length, held).every((byte) => byte === 0), 'zeros after the image');
    assert.is(image.bytes.length, data.length);
    // hugetlbfs has no write(2) at all (EINVAL); a writable shared mapping is what F_SEAL_WRITE refuses on both.
    const writeError = image.backing === 'hugetlb' ? 'EINVAL' : 'EPERM';
    assert.throws(() => writeFully(image.fd, Buffer.from('x')), (e: unknown) => e instanceof SysError && e.code === writeError);
    assert.throws(() => mapSharedWritable(image.fd, held), (e: unknown) => e instanceof SysError && e.code === 'EPERM');
    assert.throws(() => fs.ftruncateSync(image.fd, 0), (e: unknown) => (e as { code?: string }).code === 'EPERM');
  } finally {
    closeFd(image.fd);
  }
}

const HUGE_PAGE = 2 << 20;
const small = crypto.randomBytes(1 << 20);
const smallPath = file('small.erofs', small);
const smallDigest = fsverityDigest(smallPath);
const flippedPath = () => {
  const flipped = Buffer.from(small);
  flipped[654321] ^= 0x01;
  return file('flipped.erofs', flipped);
};

test('loads an image into a sealed memfd (inline hashing); the digest is fsverity\'s', async () => {
  await loadsAndSeals({ path: smallPath, expected: smallDigest }, small);
  const image = await loadImage({ path: smallPath, expected: fsverityDigest(smallPath, 'sha512') });
  closeFd(image.fd);
  assert.is(image.digest.algorithm, 'sha512');
  assert.is(image.compressed, false);
});

test('loads a large image on worker threads (default and caller-provided pool)', async () => {
  const large = crypto.randomBytes((24 << 20) + 12345);
  const target = file('large.erofs', large);
  await loadsAndSeals({ path: target, expected: fsverityDigest(target) }, large);
  const pool = new HashPool(2);
  try {
    await pool.started();
    await loadsAndSeals({ path: target, expected: fsverityDigest(target), pool, tuning: { chunkSize: 1 << 20 } }, large);
    // The loader leaves a caller's pool open: it still works.
    await loadsAndSeals({ path: target, expected: fsverityDigest(target, 'sha512'), pool }, large);
  } finally {
    await pool.close();
  }
});

test('follows a symlink to the image (composefs-rs images/ are symlinks); refuses what is not a regular file', async () => {
  const link = path.join(dir, 'link');
  fs.symlinkSync(smallPath, link);
  await loadsAndSeals({ path: link, expected: smallDigest }, small);
  const fifo = path.join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  await refusedLoad({ path: fifo, expected: smallDigest }, /is a FIFO, not a regular file/);
  await refusedLoad({ path: dir, expected: smallDigest }, /is a directory/);
  await refusedLoad({ path: '/dev/null', expected: smallDigest }, /is a character device/);
  const missing = await refusedLoad({ path: path.join(dir, 'missing'), expected: smallDigest }, /cannot stat/);
  assert.is(missing.code, 'ENOENT');
});

test('refuses a wrong digest, a truncated image and one flipped byte', async () => {
  await refusedLoad({ path: smallPath, expected: parseDigest(`sha256:${'00'.repeat(32)}`) }, /digest mismatch/);
  await refusedLoad({ path: smallPath, expected: parseDigest(`sha512:${'00'.repeat(64)}`) }, /digest mismatch/);
  const truncated = file('truncated.erofs', small.subarray(0, small.length - 100));
  await refusedLoad({ path: truncated, expected: smallDigest }, /digest mismatch/);
  await refusedLoad({ path: flippedPath(), expected: smallDigest }, /digest mismatch/);
  // Same flip, past the parallel threshold (the error path with worker threads).
  const big = crypto.randomBytes(20 << 20);
  const bigPath = file('big.erofs', big);
  const bigDigest = fsverityDigest(bigPath);
  big[(20 << 20) - 1] ^= 0x80;
  fs.writeFileSync(bigPath, big);
  await refusedLoad({ path: bigPath, expected: bigDigest }, /digest mismatch/);
});

test('kernel fs-verity path (measurement stubbed: no fs-verity on this host): copies without hashing, logs it', async () => {
  const lines: string[] = [];
  const log = { info: (m: string) => lines.push(m), notice: (m: string) => lines.push(m), warn: (m: string) => lines.push(m), error: (m: string) => lines.push(m) };
  const measure = () => ({ algorithm: 1, digest: Buffer.from(smallDigest.bytes) });
  const image = await loadImage({ path: smallPath, expected: smallDigest, log, tuning: { measure } });
  try {
    assert.is(image.method, 'kernel-fsverity');
    assert.is(getSeals(image.fd) & IMAGE_SEALS, IMAGE_SEALS);
    const copy = Buffer.alloc(small.length);
    fs.readSync(image.fd, copy, 0, copy.length, 0);
    assert.ok(copy.equals(small));
  } finally {
    closeFd(image.fd);
  }
  assert.ok(lines.some((line) => /kernel fs-verity \(the source's kernel fs-verity digest matches/.test(line)), lines.join('\n'));
  // A measurement that differs (other fs-verity parameters, say) sends the image to userspace hashing, which decides.
  const other = () => ({ algorithm: 1, digest: Buffer.alloc(32, 7) });
  const userspace = await loadImage({ path: smallPath, expected: smallDigest, tuning: { measure: other } });
  closeFd(userspace.fd);
  assert.is(userspace.method, 'userspace');
  await refusedLoad({ path: flippedPath(), expected: smallDigest, tuning: { measure: other } }, /digest mismatch/);
});

test('refuses an image larger than the limit before copying anything', async () => {
  let chunks = 0;
  await refusedLoad({ path: smallPath, expected: smallDigest, maxSize: small.length - 1, tuning: { onChunk: () => (chunks += 1) } }, /over the limit of 1048575/, 'copy-image');
  assert.is(chunks, 0);
  await loadsAndSeals({ path: smallPath, expected: smallDigest, maxSize: small.length }, small);
});

for (const mode of ['inline', 'worker threads'] as const) {
  /** A started pool, so that the workers (not this thread, while they boot) do the copy. */
  const withPool = async (action: (pool: HashPool | undefined) => Promise<void>) => {
    const pool = mode === 'inline' ? undefined : new HashPool(2);
    try {
      await pool?.started();
      await action(pool);
    } finally {
      await pool?.close();
    }
  };

  test(`refuses an image that grows during the copy (${mode})`, () => withPool(async (pool) => {
    const target = file(`grows-${mode}.erofs`, small);
    let once = false;
    const onChunk = () => {
      if (!once) fs.appendFileSync(target, 'more');
      once = true;
    };
    await refusedLoad({ path: target, expected: smallDigest, pool, tuning: { workers: 0, chunkSize: 64 << 10, onChunk } }, /grew during the copy/);
  }));

  test(`refuses an image that shrinks during the copy (${mode})`, () => withPool(async (pool) => {
    const target = file(`shrinks-${mode}.erofs`, small);
    let once = false;
    const onChunk = () => {
      if (!once) fs.truncateSync(target, 128 << 10);
      once = true;
    };
    await refusedLoad({ path: target, expected: smallDigest, pool, tuning: { workers: 0, chunkSize: 64 << 10, onChunk } }, /shrank during the copy/);
  }));
}

test('libuv\'s threads copying and hashing (hugetlb memfd, the default): an image that grows or shrinks while it is copied is refused', async () => {
  assert.ok(os.availableParallelism() > 1, 'this test needs 2 CPUs: with one, this thread copies (the tests above)');
  // onChunk: once, when every range is copied (this thread copies none), which shows the path taken.
  const changedAfterCopy = async (name: string, change: (target: string) => void, refusal: RegExp): Promise<void> => {
    const target = file(name, small);
    const calls: number[] = [];
    const onChunk = (done: number) => {
      if (calls.length === 0) change(target);
      calls.push(done);
    };
    await refusedLoad({ path: target, expected: smallDigest, tuning: { chunkSize: 64 << 10, onChunk } }, refusal);
    assert.equal(calls, [small.length], 'copied by libuv\'s threads, not range by range here');
  };
  await changedAfterCopy('grows-native.erofs', (target) => fs.appendFileSync(target, 'more'), /grew during the copy/);
  await changedAfterCopy('shrinks-native.erofs', (target) => fs.truncateSync(target, 128 << 10), new RegExp(`changed size during the copy \\(${small.length} -> 131072 bytes\\)`));
});

test('zstd: decompresses into the memfd, hashing the decompressed bytes (by name and by magic)', async () => {
  const compressed = `${smallPath}.zst`;
  execFileSync('zstd', ['-q', '-f', smallPath, '-o', compressed]);
  const image = await loadImage({ path: compressed, expected: smallDigest });
  try {
    assert.is(image.compressed, true);
    assert.is(image.size, small.length);
    assert.is(image.seals & IMAGE_SEALS, IMAGE_SEALS);
    const copy = Buffer.alloc(small.length);
    fs.readSync(image.fd, copy, 0, copy.length, 0);
    assert.ok(copy.equals(small));
  } finally {
    closeFd(image.fd);
  }
  const noSuffix = path.join(dir, 'compressed.img');
  fs.copyFileSync(compressed, noSuffix);
  const byMagic = await loadImage({ path: noSuffix, expected: smallDigest });
  closeFd(byMagic.fd);
  assert.is(byMagic.compressed, true);
  // The digest of the compressed bytes is not the image's digest.
  await refusedLoad({ path: compressed, expected: fsverityDigest(compressed) }, /digest mismatch/);
});

test('zstd: refuses a corrupt stream, a truncated one, and a decompressed size over the limit', async () => {
  const compressed = fs.readFileSync(`${smallPath}.zst`);
  const corrupt = Buffer.from(compressed);
  corrupt[Math.floor(corrupt.length / 2)] ^= 0xff;
  await refusedLoad({ path: file('corrupt.zst', corrupt), expected: smallDigest }, /corrupt zstd stream|digest mismatch/);
  await refusedLoad({ path: file('cut.zst', compressed.subarray(0, compressed.length - 10)), expected: smallDigest }, /corrupt zstd stream/);
  await refusedLoad({ path: file('junk.zst', crypto.randomBytes(5000)), expected: smallDigest }, /corrupt zstd stream/);
  const zeros = path.join(dir, 'zeros');
  fs.writeFileSync(zeros, Buffer.alloc(8 << 20));
  execFileSync('zstd', ['-q', '-f', zeros, '-o', `${zeros}.zst`]);
  assert.ok(fs.statSync(`${zeros}.zst`).size < 1 << 20);
  await refusedLoad({ path: `${zeros}.zst`, expected: fsverityDigest(zeros), maxSize: 1 << 20 }, /decompressed image is over the limit/, 'copy-image');
  const zerosImage = await loadImage({ path: `${zeros}.zst`, expected: fsverityDigest(zeros), maxSize: 8 << 20 });
  closeFd(zerosImage.fd);
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
test.run();
