// The userspace fs-verity digest against fsverity-utils' `fsverity digest` on generated files: every size class the
// tree shape depends on, both algorithms, other block sizes, salts; streamed in odd chunks, and in parallel on workers.
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { hashDataBlocks } from '../../src/verity/blocks.ts';
import { hashFile } from '../../src/verity/hash-file.ts';
import type { HashAlgorithm } from '../../src/verity/digest.ts';
import { blockHashing, FsVerityHasher, fsVerityDigest, MerkleParamsError, type MerkleOptions } from '../../src/verity/merkle.ts';
import { ChunkError, HashPool } from '../../src/verity/pool.ts';
import { CONTROL_SLOTS, hashRanges, NEXT, STOP, type RangeJob } from '../../src/verity/worker.ts';
import { copiesRangesNatively, offloadLimit, offloadsNatively, RangeHashing, sizeThreadPool } from '../../src/verity/ranges.ts';
import { SysError } from '../../src/errors.ts';
import { memfdCreate } from '../../src/sys/memfd.ts';
import { mapSharedWritable, unmap } from '../../src/sys/mmap.ts';
import { blockHashingShim } from '../../src/sys/native.ts';
import { requireTools } from '../helpers/tools.ts';

requireTools('fsverity');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-verity-'));
const BLOCK = 4096;
// A deterministic pseudo-random source (so a failure can be reproduced), large enough for the biggest file.
const SOURCE = crypto.createHash('sha256').update('sealroot').digest();
const random = (size: number, seed: number): Buffer => {
  const out = Buffer.alloc(size);
  const stream = crypto.createCipheriv('aes-128-ctr', SOURCE.subarray(0, 16), Buffer.alloc(16, seed));
  return stream.update(out);
};

function reference(file: string, options: MerkleOptions): string {
  const args = ['digest', '--compact', `--hash-alg=${options.algorithm}`, `--block-size=${options.blockSize ?? BLOCK}`];
  if (options.salt !== undefined) args.push(`--salt=${Buffer.from(options.salt).toString('hex')}`);
  return execFileSync('fsverity', [...args, file], { encoding: 'utf8' }).trim();
}

function writeFile(name: string, data: Buffer): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, data);
  return file;
}

/** Streams `data` in chunks of varying, unaligned sizes. */
function streamed(data: Buffer, options: MerkleOptions, seed: number): string {
  const hasher = new FsVerityHasher(options);
  const sizes = [1, 4095, 7, 65536 + 3, 1 << 20, 12345];
  for (let offset = 0, i = seed; offset < data.length; i++) {
    const n = Math.min(sizes[i % sizes.length]!, data.length - offset);
    hasher.update(data.subarray(offset, offset + n));
    offset += n;
  }
  return hasher.digest().toString('hex');
}

test('hello world: the known SHA-256 vector', () => {
  const digest = fsVerityDigest(Buffer.from('hello world'), { algorithm: 'sha256' });
  assert.is(digest.toString('hex'), '1e2eaa4202d750a41174ee454970b92c1bc2f925b1e35076d8c7d5f56362ba64');
});

const SIZES: [string, number][] = [
  ['empty', 0], ['1 byte', 1], ['4095', BLOCK - 1], ['4096', BLOCK], ['4097', BLOCK + 1],
  ['128 blocks', 128 * BLOCK], ['129 blocks', 129 * BLOCK], ['128*128+1 blocks', (128 * 128 + 1) * BLOCK],
  ['random 1', 1 + (crypto.randomInt(0, 3 << 20))], ['random 2', crypto.randomInt(0, 300_000)],
];

for (const algorithm of ['sha256', 'sha512'] as HashAlgorithm[]) {
  test(`${algorithm}: streamed digest equals fsverity digest at every size class`, () => {
    SIZES.forEach(([name, size], index) => {
      const data = random(size, index);
      const file = writeFile(`${algorithm}-${index}`, data);
      const expected = reference(file, { algorithm });
      assert.is(streamed(data, { algorithm }, index), expected, `${name} (${size} bytes)`);
      assert.is(fsVerityDigest(data, { algorithm }).toString('hex'), expected, `${name} (${size} bytes), one update`);
    });
  });
}

test('other block sizes and salts equal fsverity digest (salt padded to the compression block size)', () => {
  const data = random(300_000, 99);
  const file = writeFile('params', data);
  const salts = [undefined, Buffer.from('00', 'hex'), crypto.randomBytes(13), crypto.randomBytes(32)];
  for (const algorithm of ['sha256', 'sha512'] as HashAlgorithm[]) {
    for (const blockSize of [1024, 4096, 65536]) {
      for (const salt of salts) {
        const options = { algorithm, blockSize, salt };
        assert.is(streamed(data, options, blockSize), reference(file, options), `${algorithm} ${blockSize} salt ${salt?.toString('hex')}`);
      }
    }
  }
  const tiny = writeFile('tiny', Buffer.from('x'));
  assert.is(fsVerityDigest(Buffer.from('x'), { algorithm: 'sha512', blockSize: 128 }).toString('hex'), reference(tiny, { algorithm: 'sha512', blockSize: 128 }));
});

test('hashing on worker threads, and on libuv\'s threads through the shim, equals fsverity digest; the workers and this thread share the ranges', async () => {
  const pool = new HashPool(2);
  await pool.started();
  try {
    for (const [size, rangeSize] of [[(128 * 128 + 1) * BLOCK, 1 << 20], [5 * BLOCK + 17, BLOCK], [0, 1 << 20], [3 << 20, 4 << 20], [40 << 20, 1 << 20]] as const) {
      const data = random(size, size % 251);
      const file = writeFile(`parallel-${size}`, data);
      for (const algorithm of ['sha256', 'sha512'] as HashAlgorithm[]) {
        const fd = fs.openSync(file, 'r');
        try {
          const withPool = await hashFile({ fd, size, merkle: { algorithm }, path: file, pool, rangeSize });
          const native = await hashFile({ fd, size, merkle: { algorithm }, path: file, rangeSize });
          const expected = reference(file, { algorithm });
          assert.is(withPool.digest.toString('hex'), expected, `${size} bytes ${algorithm}, workers`);
          assert.is(native.digest.toString('hex'), expected, `${size} bytes ${algorithm}, on libuv's threads`);
          assert.is(withPool.bytes, size);
          assert.is(withPool.hashedHere + withPool.hashedByWorkers, Math.ceil(size / rangeSize), 'every range hashed once');
          assert.equal([native.bytes, native.hashedHere, native.hashedByWorkers], [size, 0, Math.ceil(size / rangeSize)], 'every range read and hashed by libuv\'s threads');
          if (size === 40 << 20) assert.ok(withPool.hashedByWorkers > 0, 'the started workers took ranges');
        } finally {
          fs.closeSync(fd);
        }
      }
    }
  } finally {
    await pool.close();
  }
});

test('a block larger than a range (2 MiB, which fsverity-utils takes): hashFile makes the range one block', async () => {
  const data = random((3 << 20) + 5, 41);
  const file = writeFile('big-blocks', data);
  const fd = fs.openSync(file, 'r');
  try {
    for (const algorithm of ['sha256', 'sha512'] as HashAlgorithm[]) {
      const result = await hashFile({ fd, size: data.length, merkle: { algorithm, blockSize: 2 << 20 }, path: file });
      assert.is(result.digest.toString('hex'), reference(file, { algorithm, blockSize: 2 << 20 }), algorithm);
    }
  } finally {
    fs.closeSync(fd);
  }
});

test('a file shorter than announced: hashFile reports the bytes it got, and their digest', async () => {
  const data = random(10_000, 3);
  const file = writeFile('short', data);
  const fd = fs.openSync(file, 'r');
  try {
    const pool = new HashPool(1);
    await pool.started();
    try {
      const result = await hashFile({ fd, size: 50_000, merkle: { algorithm: 'sha256' }, path: file, pool, rangeSize: BLOCK });
      assert.is(result.bytes, 10_000);
      assert.is(result.digest.toString('hex'), reference(file, { algorithm: 'sha256' }));
    } finally {
      await pool.close();
    }
    const native = await hashFile({ fd, size: 50_000, merkle: { algorithm: 'sha256' }, path: file, rangeSize: BLOCK });
    assert.is(native.bytes, 10_000);
    assert.is(native.digest.toString('hex'), reference(file, { algorithm: 'sha256' }));
  } finally {
    fs.closeSync(fd);
  }
});

/** A job over `fd` of `size` bytes, every range claimable at once (read with pread). */
function readJob(fd: number, size: number, rangeSize = BLOCK): RangeJob {
  const hashing = blockHashing({ algorithm: 'sha256' });
  const ranges = Math.ceil(size / rangeSize);
  const job: RangeJob = {
    hashing, size, rangeSize, ranges, fd,
    state: new SharedArrayBuffer(CONTROL_SLOTS * 4),
    lengths: new SharedArrayBuffer(ranges * 4),
    digests: new SharedArrayBuffer(Math.ceil(size / BLOCK) * 32),
  };
  new Int32Array(job.state)[0] = ranges;
  return job;
}

test('a worker error (bad fd) rejects the job with its errno code', async () => {
  const pool = new HashPool(1);
  await pool.started();
  try {
    await pool.run(readJob(987654, 8192));
    assert.unreachable('a read from a closed fd succeeded in the worker');
  } catch (error) {
    assert.instance(error, ChunkError);
    assert.is((error as ChunkError).code, 'EBADF');
  }
  try {
    await hashFile({ fd: 987654, size: 8192, merkle: { algorithm: 'sha256' }, path: 'closed', pool, rangeSize: BLOCK });
    assert.unreachable('hashFile on a closed fd succeeded');
  } catch (error) {
    assert.is((error as { code?: string }).code, 'EBADF');
  } finally {
    await pool.close();
  }
  // On libuv's threads: the same errno, as a SysError naming pread64 and the file.
  const error = await rejection(hashFile({ fd: 987654, size: 8192, merkle: { algorithm: 'sha256' }, path: 'closed', rangeSize: BLOCK }));
  assert.instance(error, SysError);
  assert.equal([(error as SysError).syscall, (error as SysError).code, (error as SysError).path], ['pread64', 'EBADF', 'closed']);
});

test('parameters are checked as fsverity-utils checks them', () => {
  const bad: [MerkleOptions, RegExp][] = [
    [{ algorithm: 'sha256', blockSize: 3000 }, /power of 2/],
    [{ algorithm: 'sha512', blockSize: 64 }, /too small/],
    [{ algorithm: 'sha256', salt: new Uint8Array(33) }, /at most 32/],
    [{ algorithm: 'md5' as HashAlgorithm }, /unknown hash algorithm/],
  ];
  for (const [options, message] of bad) {
    assert.throws(() => blockHashing(options), (e: unknown) => e instanceof MerkleParamsError && message.test(e.message));
  }
  assert.is(blockHashing({ algorithm: 'sha256', salt: new Uint8Array(1) }).paddedSalt.length, 64);
  assert.is(blockHashing({ algorithm: 'sha512', salt: new Uint8Array(32) }).paddedSalt.length, 128);
});

test('workers that have not started yet leave the ranges to this thread (same digest)', async () => {
  const data = random(9 * BLOCK + 5, 7);
  const file = writeFile('early', data);
  const fd = fs.openSync(file, 'r');
  const pool = new HashPool(2);
  try {
    const result = await hashFile({ fd, size: data.length, merkle: { algorithm: 'sha256' }, path: file, pool, rangeSize: BLOCK });
    assert.is(result.digest.toString('hex'), reference(file, { algorithm: 'sha256' }));
    assert.is(result.hashedHere + result.hashedByWorkers, 10);
  } finally {
    fs.closeSync(fd);
    await pool.close();
  }
});

test('a range survives EINTR and short reads; a stopped job claims nothing more', () => {
  const data = random(3 * BLOCK + 100, 11);
  let calls = 0;
  const fakeFs = {
    readSync: (_fd: number, buffer: Uint8Array, offset: number, length: number, position: number) => {
      if (++calls % 3 === 0) throw Object.assign(new Error('interrupted'), { code: 'EINTR' });
      const n = Math.min(length, 777, data.length - position);
      buffer.set(data.subarray(position, position + n), offset);
      return Math.max(n, 0);
    },
  } as unknown as typeof fs;
  const deps = { fs: fakeFs, crypto, hashDataBlocks };
  const job = readJob(3, data.length, 4 * BLOCK);
  assert.is(hashRanges(deps, job, new Uint8Array(4 * BLOCK)), 1);
  assert.is(new Int32Array(job.lengths)[0], data.length, 'short reads continued up to the end of the file');
  assert.ok(Buffer.from(job.digests).equals(hashDataBlocks(crypto, job.hashing, data)));
  const stopped = readJob(3, data.length, BLOCK);
  new Int32Array(stopped.state)[2] = 1;
  assert.is(hashRanges(deps, stopped, new Uint8Array(BLOCK)), 0);
});

test('a mapped job on a thread that cannot map reads the published lengths with pread (same digests)', () => {
  const data = random(3 * BLOCK + 100, 13);
  const file = writeFile('mapped-fallback', data);
  const fd = fs.openSync(file, 'r');
  try {
    const job = { ...readJob(fd, data.length, 2 * BLOCK), mapping: { id: 1, size: data.length } };
    new Int32Array(job.lengths).set([2 * BLOCK, BLOCK + 100]);
    assert.is(hashRanges({ fs, crypto, hashDataBlocks }, job, new Uint8Array(2 * BLOCK)), 2);
    assert.ok(Buffer.from(job.digests).equals(hashDataBlocks(crypto, job.hashing, data)));
  } finally {
    fs.closeSync(fd);
  }
});

test('hashRanges stops after `limit` ranges; hashAhead hashes one range per turn of the event loop, finish() the rest (same digest)', async () => {
  const data = random(5 * BLOCK + 10, 17);
  const limited = readJob(-1, data.length, BLOCK);
  const fromBuffer = { ...fs, readSync: (_fd: number, buffer: Uint8Array, offset: number, length: number, position: number) => {
    const n = Math.max(0, Math.min(length, data.length - position));
    buffer.set(data.subarray(position, position + n), offset);
    return n;
  } } as unknown as typeof fs;
  assert.is(hashRanges({ fs: fromBuffer, crypto, hashDataBlocks }, limited, new Uint8Array(BLOCK), 2), 2);
  assert.is(new Int32Array(limited.state)[1], 2, 'only two ranges claimed');
  assert.is(hashRanges({ fs: fromBuffer, crypto, hashDataBlocks }, limited, new Uint8Array(BLOCK)), 4);

  const options = { algorithm: 'sha256' as const, blockSize: BLOCK };
  const mapped = new Uint8Array(data);
  const hashing = new RangeHashing({ merkle: options, fd: -1, size: data.length, mapped, rangeSize: BLOCK });
  let turns = 0;
  const ahead = hashing.hashAhead(); // nothing is published yet: returns at once
  await ahead;
  for (let done = 0; done < data.length; done += BLOCK) hashing.publish(Math.min(BLOCK, data.length - done));
  const running = hashing.hashAhead();
  for (; turns < 3; turns++) await new Promise<void>((resolve) => setImmediate(resolve));
  const result = await hashing.finish();
  await running;
  assert.is(result.hashedHere, 6, 'every range hashed on this thread, ahead or in finish()');
  assert.ok(result.digest.equals(fsVerityDigest(data, options)));
});

/** A mapped job of `data` in ranges of two blocks, every range published at once, then finished. */
async function offloaded(data: Buffer, merkle: MerkleOptions, offload: number, stopFirst = false): ReturnType<RangeHashing['finish']> {
  const hashing = new RangeHashing({ merkle, fd: -1, size: data.length, mapped: new Uint8Array(data), rangeSize: 2 * BLOCK, offload });
  if (stopFirst) await hashing.abandon();
  for (let done = 0; done < data.length; done += 2 * BLOCK) hashing.publish(Math.min(2 * BLOCK, data.length - done));
  return hashing.finish();
}

test('offload: published ranges hashed on libuv\'s threads through the shim (at most `offload` at once), the rest here; same digest', async () => {
  assert.ok(offloadsNatively(), 'the shim has hashBlocksAsync (build it: npm run build)');
  const options = { algorithm: 'sha256' as const, blockSize: BLOCK };
  const data = random(9 * BLOCK + 7, 19);
  const result = await offloaded(data, options, 2);
  assert.ok(result.digest.equals(fsVerityDigest(data, options)));
  assert.is(result.hashedHere + result.hashedByWorkers, 5);
  assert.ok(result.hashedByWorkers >= 2, `offloaded ${result.hashedByWorkers}`);
  // sha512 with a salt, one at a time: the first range published is claimed for libuv's thread at once.
  const salted = { algorithm: 'sha512' as const, blockSize: BLOCK, salt: new Uint8Array([1, 2, 3]) };
  const one = await offloaded(data, salted, 1);
  assert.ok(one.digest.equals(fsVerityDigest(data, salted)));
  assert.is(one.hashedHere + one.hashedByWorkers, 5);
  assert.ok(one.hashedByWorkers >= 1, `offloaded ${one.hashedByWorkers}`);
  // Stopped first: nothing is offloaded, nothing hashed.
  const none = await offloaded(data, options, 1, true);
  assert.equal([none.hashedHere, none.hashedByWorkers], [0, 0]);
});

/** The error a promise rejects with; fails the test when it resolves. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new assert.Assertion({ message: 'expected a rejection, it resolved', operator: 'rejects', generated: true, expects: 'a rejection', actual: 'resolved' });
}

/** A memfd of `capacity` bytes mapped shared and writable, and `source` opened: copyFrom's two ends. */
async function withCopyEnds(source: string, capacity: number, run: (ends: { memfd: number; source: number; destination: number }) => Promise<void>): Promise<void> {
  const memfd = memfdCreate('sealroot-test-copy');
  fs.ftruncateSync(memfd, capacity);
  const destination = mapSharedWritable(memfd, capacity);
  const sourceFd = fs.openSync(source, 'r');
  try {
    await run({ memfd, source: sourceFd, destination });
  } finally {
    unmap(destination, capacity);
    fs.closeSync(sourceFd);
    fs.closeSync(memfd);
  }
}

test('copyFrom: libuv\'s threads pread each range into the memfd and hash it there; the digest and the memfd\'s bytes are the source\'s', async () => {
  assert.ok(copiesRangesNatively(), 'the shim has copyHashRangesAsync (build it: npm run build)');
  const merkle = { algorithm: 'sha256' as const, blockSize: BLOCK };
  const data = random(9 * BLOCK + 7, 23);
  const file = writeFile('copy-from.bin', data);
  const capacity = 12 * BLOCK;
  await withCopyEnds(file, capacity, async ({ memfd, source, destination }) => {
    const hashing = new RangeHashing({ merkle, fd: memfd, size: data.length, rangeSize: 2 * BLOCK, offload: 2, copyFrom: { source, destination, path: file } });
    assert.match(String(await rejection(hashing.finish())), /ranges not published/, 'finish() before copyAll()');
    assert.is(await hashing.copyAll(), data.length);
    const result = await hashing.finish();
    assert.ok(result.digest.equals(fsVerityDigest(data, merkle)));
    assert.equal([result.hashedHere, result.hashedByWorkers], [0, 5]);
    const held = Buffer.alloc(capacity);
    fs.readSync(memfd, held, 0, capacity, 0);
    assert.ok(held.subarray(0, data.length).equals(data), 'the memfd holds the source\'s bytes');
    assert.ok(held.subarray(data.length).every((byte) => byte === 0), 'nothing past them');
  });
  // sha512 with a salt, one range at a time.
  const salted = { algorithm: 'sha512' as const, blockSize: BLOCK, salt: new Uint8Array([7, 7]) };
  await withCopyEnds(file, capacity, async ({ memfd, source, destination }) => {
    const hashing = new RangeHashing({ merkle: salted, fd: memfd, size: data.length, rangeSize: 2 * BLOCK, offload: 1, copyFrom: { source, destination, path: file } });
    assert.is(await hashing.copyAll(), data.length);
    assert.ok((await hashing.finish()).digest.equals(fsVerityDigest(data, salted)));
  });
});

test('copyFrom, hostile source: one that ends early gives fewer bytes (the digest of those), a failed pread is a SysError; a stop claims no more ranges', async () => {
  const merkle = { algorithm: 'sha256' as const, blockSize: BLOCK };
  const data = random(5 * BLOCK, 29);
  const file = writeFile('copy-from-short.bin', data);
  const capacity = 16 * BLOCK;
  // Expected 16 blocks, the file holds 5: the copy ends with the first short range (it is what the loader refuses).
  await withCopyEnds(file, capacity, async ({ memfd, source, destination }) => {
    const hashing = new RangeHashing({ merkle, fd: memfd, size: capacity, rangeSize: 2 * BLOCK, offload: 2, copyFrom: { source, destination, path: file } });
    assert.is(await hashing.copyAll(), data.length);
    const result = await hashing.finish();
    assert.is(result.bytes, data.length);
    assert.ok(result.digest.equals(fsVerityDigest(data, merkle)));
  });
  // pread of a directory: EISDIR, named for the source's path.
  await withCopyEnds(dir, capacity, async ({ memfd, source, destination }) => {
    const hashing = new RangeHashing({ merkle, fd: memfd, size: capacity, rangeSize: 2 * BLOCK, offload: 2, copyFrom: { source, destination, path: dir } });
    const error = await rejection(hashing.copyAll());
    assert.instance(error, SysError);
    assert.equal([(error as SysError).syscall, (error as SysError).code, (error as SysError).path], ['pread64', 'EISDIR', dir]);
  });
  // A stop: the ranges' loops claim nothing once the stop flag is set (here before they start: the memfd stays
  // empty, no range is claimed); copyAll() rejects with the signal's reason once the loops have ended.
  const big = random(16 * BLOCK, 31);
  const bigFile = writeFile('copy-from-stop.bin', big);
  await withCopyEnds(bigFile, capacity, async ({ memfd, source, destination }) => {
    const control = new Int32Array(new SharedArrayBuffer(CONTROL_SLOTS * 4));
    Atomics.store(control, STOP, 1);
    const lengths = new Int32Array(8);
    const copy = blockHashingShim()!.copyHashRangesAsync!;
    const done = await copy(control, NEXT, STOP, lengths, source, destination, capacity, 2 * BLOCK, BLOCK, 'sha256', new Uint8Array(0), new Uint8Array(16 * 32));
    assert.is(done, 0);
    assert.is(Atomics.load(control, NEXT), 0, 'no range claimed');
    const held = Buffer.alloc(capacity);
    fs.readSync(memfd, held, 0, capacity, 0);
    assert.ok(held.every((byte) => byte === 0), 'nothing copied after the stop');
    const hashing = new RangeHashing({ merkle, fd: memfd, size: capacity, rangeSize: 2 * BLOCK, offload: 1, copyFrom: { source, destination, path: bigFile } });
    const stop = new AbortController();
    const copying = hashing.copyAll(stop.signal);
    stop.abort(new Error('interrupted by SIGTERM'));
    assert.match(String(await rejection(copying)), /interrupted by SIGTERM/);
  });
});

test('copyFrom misuse throws at once: with a mapping too, without offload; the shim checks its arguments before any work is queued', async () => {
  const merkle = { algorithm: 'sha256' as const, blockSize: BLOCK };
  const copyFrom = { source: 0, destination: 4096, path: 'x' };
  assert.throws(() => new RangeHashing({ merkle, fd: -1, size: BLOCK, mapped: new Uint8Array(BLOCK), offload: 1, copyFrom }), /copyFrom needs offload, no mapping/);
  assert.throws(() => new RangeHashing({ merkle, fd: -1, size: BLOCK, copyFrom }), /copyFrom needs offload/);
  const copy = blockHashingShim()!.copyHashRangesAsync!;
  const control: Int32Array = new Int32Array(new SharedArrayBuffer(12));
  const lengths: Int32Array = new Int32Array(2);
  const salt = new Uint8Array(0);
  const out = new Uint8Array(64);
  const good: { control: Int32Array; next: number; stop: number; lengths: Int32Array; source: number; destination: number; size: number; rangeSize: number; out: Uint8Array } = {
    control, next: 1, stop: 2, lengths, source: 0, destination: 4096, size: 2 * BLOCK, rangeSize: BLOCK, out,
  };
  const cases: [string, Partial<typeof good>, RegExp][] = [
    ['control not an Int32Array', { control: new Uint32Array(3) as unknown as Int32Array }, /bad control/],
    ['next and stop the same slot', { stop: 1 }, /bad control/],
    ['a slot past the control', { stop: 3 }, /bad control/],
    ['size not an integer', { size: 1.5 }, /bad control/],
    ['rangeSize 0', { rangeSize: 0 }, /bad control/],
    ['fewer lengths than ranges', { lengths: new Int32Array(1) }, /lengths holds fewer/],
    ['rangeSize off the block size', { rangeSize: BLOCK + 1, size: BLOCK + 1 }, /not a multiple of blockSize/],
    ['out too small for the digests', { out: new Uint8Array(32) }, /out is too small/],
    ['out too small, no destination (the threads\' own buffers)', { destination: 0, out: new Uint8Array(32) }, /out is too small/],
  ];
  for (const [name, change, message] of cases) {
    const a = { ...good, ...change } as typeof good;
    assert.throws(() => copy(a.control, a.next, a.stop, a.lengths, a.source, a.destination, a.size, a.rangeSize, BLOCK, 'sha256', salt, a.out), message, name);
  }
  assert.is(control[1], 0, 'no range was claimed by a refused call');
});

test('libuv\'s pool: two threads left to the TPM device\'s reads and writes; a size the environment sets is kept', () => {
  const saved = process.env.UV_THREADPOOL_SIZE;
  try {
    process.env.UV_THREADPOOL_SIZE = '10';
    sizeThreadPool();
    assert.is(process.env.UV_THREADPOOL_SIZE, '10', 'a size the environment set is kept');
    assert.equal([offloadLimit(1), offloadLimit(8), offloadLimit(9)], [1, 8, 8]);
    process.env.UV_THREADPOOL_SIZE = '2';
    assert.is(offloadLimit(4), 1, 'at least one range at once');
    delete process.env.UV_THREADPOOL_SIZE;
    assert.equal([offloadLimit(1), offloadLimit(2), offloadLimit(8)], [1, 2, 2], 'libuv\'s default 4 threads');
  } finally {
    if (saved === undefined) delete process.env.UV_THREADPOOL_SIZE;
    else process.env.UV_THREADPOOL_SIZE = saved;
  }
});

test('sizeThreadPool() starts libuv\'s pool with one thread per CPU and two more (6 CPUs said: 8), and leaves no variable for the processes it starts', () => {
  const script = `const { sizeThreadPool, offloadLimit } = await import(${JSON.stringify(path.resolve(import.meta.dirname, '../../src/verity/ranges.ts'))});
const fs = await import('node:fs');
sizeThreadPool(6);
await new Promise((resolve) => setTimeout(resolve, 200));
const threads = fs.readdirSync('/proc/self/task').filter((task) => fs.readFileSync('/proc/self/task/' + task + '/comm', 'utf8').startsWith('libuv-worker')).length;
console.log(JSON.stringify({ threads, variable: process.env.UV_THREADPOOL_SIZE ?? null, limit: offloadLimit(64) }));`;
  const env = { ...process.env };
  delete env.UV_THREADPOOL_SIZE;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env });
  assert.equal(JSON.parse(out), { threads: 8, variable: null, limit: 6 });
});

test('FsVerityHasher refuses misuse: digests off a block boundary, a second digest()', () => {
  const hasher = new FsVerityHasher({ algorithm: 'sha256' });
  hasher.update(Buffer.alloc(10));
  assert.throws(() => hasher.addBlockDigests(Buffer.alloc(32), BLOCK), /block boundary/);
  hasher.digest();
  assert.throws(() => hasher.digest(), /already finished/);
  assert.throws(() => new FsVerityHasher({ algorithm: 'sha256' }).addBlockDigests(Buffer.alloc(32), 2 * BLOCK), /digests for 2 blocks/);
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
test.run();
