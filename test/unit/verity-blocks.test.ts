// The shim's native block hashing (native/sys_shim.c hashBlocks) against hashDataBlocks (node:crypto, one call per
// block): the same digests for both algorithms, with and without salt, every block size class, partial and empty
// input, any kind of view; and every bad argument refused before anything is written.
import * as crypto from 'node:crypto';
import * as os from 'node:os';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { blockHasher, defaultBlockHasher, hashDataBlocks } from '../../src/verity/blocks.ts';
import type { HashAlgorithm } from '../../src/verity/digest.ts';
import { blockHashing } from '../../src/verity/merkle.ts';
import { blockHashingShim, shimPathForThreads, syscallNumber, type NativeBlockHashing } from '../../src/sys/native.ts';
import { workerShim } from '../../src/verity/worker.ts';

function nativeShim(): NativeBlockHashing {
  const shim = blockHashingShim();
  assert.ok(shim !== undefined, 'the shim is not built or has no hashBlocks: npm run build:native');
  return shim;
}

// Deterministic bytes, so that a failure can be reproduced.
const random = (size: number, seed: number): Buffer =>
  crypto.createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16, seed)).update(Buffer.alloc(size));

test('native and node:crypto block digests are identical: sha256/sha512, salts, block sizes, partial and empty input', () => {
  const native = blockHasher({ hashDataBlocks, shim: nativeShim() });
  assert.is.not(native, hashDataBlocks, 'the native path is chosen when the shim has hashBlocks');
  let compared = 0;
  for (const algorithm of ['sha256', 'sha512'] as HashAlgorithm[]) {
    for (const salt of [undefined, Buffer.from([0xab]), random(32, 1)]) {
      for (const blockSize of [algorithm === 'sha256' ? 64 : 128, 1024, 4096, 65536]) {
        const hashing = blockHashing({ algorithm, blockSize, salt });
        for (const size of [0, 1, blockSize - 1, blockSize, blockSize + 1, 3 * blockSize + 17]) {
          const data = random(size, size % 251);
          const expected = hashDataBlocks(crypto, hashing, data);
          const got = native(crypto, hashing, data);
          assert.is(got.length, Math.ceil(size / blockSize) * hashing.digestSize);
          assert.ok(got.equals(expected), `${algorithm} salt ${salt?.length ?? 0} block ${blockSize} size ${size}`);
          compared += 1;
        }
      }
    }
  }
  assert.is(compared, 2 * 3 * 4 * 6);
});

test('the last partial block is zero-padded: its digest is the digest of the padded block', () => {
  const shim = nativeShim();
  const hashing = blockHashing({ algorithm: 'sha256', blockSize: 4096 });
  const data = random(4096 + 100, 3);
  const out = Buffer.alloc(64);
  assert.is(shim.hashBlocks(data, 4096, 'sha256', hashing.paddedSalt, out), 2);
  const padded = Buffer.alloc(4096);
  data.copy(padded, 0, 4096);
  assert.ok(out.subarray(32).equals(crypto.hash('sha256', padded, 'buffer')));
  assert.ok(out.subarray(0, 32).equals(crypto.hash('sha256', data.subarray(0, 4096), 'buffer')));
});

test('any view: its bytes from its offset (TypedArrays of wider elements, DataView), out at an offset', () => {
  const shim = nativeShim();
  const hashing = blockHashing({ algorithm: 'sha512', blockSize: 1024, salt: Buffer.from('salt') });
  const backing = random(8 + 3 * 1024, 9);
  const bytes = new Uint8Array(backing.buffer, backing.byteOffset + 8, 3 * 1024);
  const expected = hashDataBlocks(crypto, hashing, bytes);
  const views: ArrayBufferView[] = [
    new Float64Array(backing.buffer, backing.byteOffset + 8, (3 * 1024) / 8),
    new Uint16Array(backing.buffer, backing.byteOffset + 8, (3 * 1024) / 2),
    new DataView(backing.buffer, backing.byteOffset + 8, 3 * 1024),
  ];
  for (const view of views) {
    const out = new Uint8Array(16 + expected.length);
    assert.is(shim.hashBlocks(view, 1024, 'sha512', new DataView(hashing.paddedSalt.buffer), out.subarray(16)), 3);
    assert.ok(Buffer.from(out.subarray(16)).equals(expected), view.constructor.name);
    assert.ok(out.subarray(0, 16).every((byte) => byte === 0), 'nothing written before out');
  }
});

test('bad arguments throw, and nothing is written into out', () => {
  const shim = nativeShim();
  const data = random(3 * 4096, 5);
  const none = new Uint8Array(0);
  const saltBacking = new Uint8Array(160);
  const salt64 = saltBacking.subarray(0, 64);
  const out = Buffer.alloc(3 * 64, 0x5a);
  const call = (...args: unknown[]) => (shim.hashBlocks as (...a: unknown[]) => number)(...args);
  const cases: [string, unknown[], RegExp][] = [
    ['too few arguments', [data, 4096, 'sha256', none], /data must be/],
    ['data an ArrayBuffer', [data.buffer, 4096, 'sha256', none, out], /data must be/],
    ['data a string', ['abc', 4096, 'sha256', none, out], /data must be/],
    ['block size not a power of two', [data, 4095, 'sha256', none, out], /power of 2/],
    ['block size 0', [data, 0, 'sha256', none, out], /power of 2/],
    ['block size negative', [data, -4096, 'sha256', none, out], /power of 2/],
    ['block size above 2^30', [data, 2 ** 31, 'sha256', none, out], /power of 2/],
    ['block size fractional', [data, 4096.5, 'sha256', none, out], /power of 2/],
    ['block size NaN', [data, NaN, 'sha256', none, out], /power of 2/],
    ['block size a string', [data, '4096', 'sha256', none, out], /blockSize must be a number/],
    ['unknown algorithm', [data, 4096, 'md5', none, out], /algorithm/],
    ['algorithm in capitals', [data, 4096, 'SHA256', none, out], /algorithm/],
    ['algorithm with a NUL', [data, 4096, 'sha256\0', none, out], /algorithm/],
    ['algorithm longer', [data, 4096, 'sha2566', none, out], /algorithm/],
    ['algorithm an id', [data, 4096, 1, none, out], /algorithm/],
    ['salt not padded', [data, 4096, 'sha256', new Uint8Array(32), out], /paddedSalt/],
    ['salt padded for sha256, used with sha512', [data, 4096, 'sha512', salt64, out], /paddedSalt/],
    ['salt too long', [data, 4096, 'sha256', new Uint8Array(192), out], /paddedSalt/],
    ['salt an ArrayBuffer', [data, 4096, 'sha256', new ArrayBuffer(64), out], /paddedSalt must be/],
    ['out too small', [data, 4096, 'sha256', none, out.subarray(0, 3 * 32 - 1)], /too small/],
    ['out too small for sha512', [data, 4096, 'sha512', none, out.subarray(0, 3 * 64 - 1)], /too small/],
    ['out too small for a partial block', [data.subarray(0, 4097), 4096, 'sha256', none, out.subarray(0, 32)], /too small/],
    ['out an ArrayBuffer', [data, 4096, 'sha256', none, out.buffer], /out must be/],
    ['out inside data', [data, 4096, 'sha256', none, data.subarray(4096, 4096 + 96)], /overlaps/],
    ['out overlapping the salt', [data, 4096, 'sha256', salt64, saltBacking.subarray(32, 128)], /overlaps/],
  ];
  const before = Buffer.from(data);
  for (const [name, args, message] of cases) {
    assert.throws(() => call(...args), (error: unknown) => error instanceof Error && message.test(error.message), name);
    assert.ok(out.every((byte) => byte === 0x5a), `${name}: out untouched`);
  }
  assert.ok(data.equals(before), 'data untouched');
  // The boundaries that are accepted: out exactly large enough, right after the data in the same buffer.
  const shared = Buffer.alloc(4096 + 32);
  assert.is(call(shared.subarray(0, 4096), 4096, 'sha256', none, shared.subarray(4096)), 1);
});

test('hashBlocksAsync: the same digests on a thread of libuv\'s pool; its arguments checked at the call (it throws, no promise)', async () => {
  const shim = nativeShim();
  assert.type(shim.hashBlocksAsync, 'function', 'the shim has hashBlocksAsync');
  const hashAsync = shim.hashBlocksAsync!;
  for (const algorithm of ['sha256', 'sha512'] as const) {
    const hashing = blockHashing({ algorithm, salt: Buffer.from('salt') });
    const data = random(7 * 4096 + 99, 21);
    const expected = hashDataBlocks(crypto, hashing, data);
    // Into a SharedArrayBuffer at an offset, as the range hashing does.
    const out = new Uint8Array(new SharedArrayBuffer(expected.length + 8), 8);
    const pending = hashAsync(data, 4096, algorithm, hashing.paddedSalt, out);
    assert.instance(pending, Promise);
    assert.is(await pending, 8);
    assert.ok(Buffer.from(out).equals(expected), algorithm);
  }
  const data = random(2 * 4096, 22);
  const none = new Uint8Array(0);
  const call = (...args: unknown[]) => (hashAsync as (...a: unknown[]) => Promise<number>)(...args);
  assert.throws(() => call(data, 4095, 'sha256', none, new Uint8Array(64)), /power of 2/);
  assert.throws(() => call(data, 4096, 'sha256', none, new Uint8Array(63)), /too small/);
  assert.throws(() => call(data, 4096, 'sha256', none, data.subarray(0, 64)), /overlaps/);
  // Many at once, each its own range of one output table.
  const table = new Uint8Array(16 * 32);
  const whole = random(16 * 4096, 23);
  await Promise.all(Array.from({ length: 16 }, (_, i) => hashAsync(whole.subarray(i * 4096, (i + 1) * 4096), 4096, 'sha256', none, table.subarray(i * 32, (i + 1) * 32))));
  assert.ok(Buffer.from(table).equals(hashDataBlocks(crypto, blockHashing({ algorithm: 'sha256' }), whole)));
});

test('a worker thread gets the native path too (the shim loaded where the main thread has it)', () => {
  const data = { shim: shimPathForThreads(), mmap: syscallNumber('mmap') };
  assert.type(data.shim, 'string');
  const shim = workerShim({ os, data });
  assert.type(shim?.hashBlocks, 'function');
  const hashing = blockHashing({ algorithm: 'sha256' });
  const bytes = random(5 * 4096 + 1, 11);
  const worker = blockHasher({ hashDataBlocks, shim });
  assert.is.not(worker, hashDataBlocks);
  assert.ok(worker(crypto, hashing, bytes).equals(hashDataBlocks(crypto, hashing, bytes)));
  // Without a shim (none loadable in this process): node:crypto's per-block hashing.
  assert.is(blockHasher({ hashDataBlocks, shim: workerShim({ os, data: { shim: undefined, mmap: data.mmap } }) }), hashDataBlocks);
  assert.is(blockHasher({ hashDataBlocks, shim: {} }), hashDataBlocks, 'a shim built before hashBlocks');
});

test('this thread hashes natively by default when the shim is built', () => {
  nativeShim();
  assert.is.not(defaultBlockHasher(), hashDataBlocks);
  assert.is(defaultBlockHasher(), defaultBlockHasher());
});

test.run();
