// The boot's primitives without node:crypto (issue 15): the shim's digests and constant-time compare agree with
// node:crypto, getrandom(2) fills what it is asked for. The shim is built here (npm run build:native), so these are
// its answers, not node:crypto's fallback.
import * as nodeCrypto from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { canHash, constantTimeEqual, hash, randomBytes } from '../../src/crypto/primitives.ts';
import { cryptoShim } from '../../src/sys/native.ts';

const ALGORITHMS = ['sha1', 'sha256', 'sha384', 'sha512'] as const;
const shim = cryptoShim();

test('the shim is built with its digests (else the tests below would test the fallback)', () => {
  assert.ok(shim !== undefined, 'cryptoShim() is undefined: run npm run build:native');
});

test('digest: as node:crypto for the four algorithms: empty input, several parts, 1 MiB, views at an offset', () => {
  const mebibyte = nodeCrypto.randomBytes(1 << 20);
  const parts = Array.from({ length: 40 }, (_, index) => nodeCrypto.randomBytes(index * 7));
  const view = new Uint8Array(mebibyte.buffer, mebibyte.byteOffset + 3, 1000);
  for (const algorithm of ALGORITHMS) {
    const expected = (...data: Uint8Array[]) => {
      const hasher = nodeCrypto.createHash(algorithm);
      for (const part of data) hasher.update(part);
      return hasher.digest();
    };
    assert.equal(shim!.digest(algorithm), expected(), `${algorithm} of nothing`);
    assert.equal(shim!.digest(algorithm, new Uint8Array(0)), expected(), `${algorithm} of an empty part`);
    assert.equal(shim!.digest(algorithm, Buffer.from('abc'), mebibyte), expected(Buffer.from('abc'), mebibyte), `${algorithm} of two parts`);
    assert.equal(shim!.digest(algorithm, ...parts), expected(...parts), `${algorithm} of 40 parts`);
    assert.equal(shim!.digest(algorithm, view), expected(view), `${algorithm} of a view at an offset`);
    assert.equal(hash(algorithm, mebibyte), expected(mebibyte), `hash() ${algorithm}`);
    assert.ok(Buffer.isBuffer(hash(algorithm)));
    assert.ok(canHash(algorithm));
  }
  // An algorithm the shim lacks goes to node:crypto (an SM3 PCR bank).
  assert.equal(hash('sm3', Buffer.from('abc')), nodeCrypto.createHash('sm3').update('abc').digest());
  assert.not.ok(canHash('no-such-hash'));
  assert.throws(() => shim!.digest('md5' as 'sha1'), /algorithm must be/);
  assert.throws(() => shim!.digest('sha256', 'text' as unknown as Uint8Array), /TypedArrays or DataViews/);
});

test('equalConstantTime: equal, different, different lengths, empty', () => {
  for (const equal of [shim!.equalConstantTime, constantTimeEqual]) {
    assert.ok(equal(Buffer.from('0123456789abcdef'), Buffer.from('0123456789abcdef')));
    assert.not.ok(equal(Buffer.from('0123456789abcdef'), Buffer.from('0123456789abcdeF')));
    assert.not.ok(equal(Buffer.from('x123456789abcdef'), Buffer.from('0123456789abcdef')));
    assert.not.ok(equal(Buffer.from('0123'), Buffer.from('01234')));
    assert.ok(equal(new Uint8Array(0), new Uint8Array(0)));
  }
});

test('randomBytes (getrandom): the length asked for, different across calls, not all one byte value', () => {
  for (const size of [0, 1, 16, 300, 70_000]) assert.is(randomBytes(size).length, size);
  const a = randomBytes(32);
  const b = randomBytes(32);
  assert.not.equal(a, b);
  assert.ok(new Set(randomBytes(4096)).size > 200, 'bytes spread over their values');
  assert.throws(() => randomBytes(-1), RangeError);
  assert.throws(() => randomBytes(1.5), RangeError);
});

test.run();
