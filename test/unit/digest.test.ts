import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DigestSyntaxError, digestsEqual, formatDigest, parseDigest } from '../../src/verity/digest.ts';

const HELLO = '1e2eaa4202d750a41174ee454970b92c1bc2f925b1e35076d8c7d5f56362ba64';

test('parses and formats sha256:/sha512: digests, bare hex by length', () => {
  const d = parseDigest(`sha256:${HELLO.toUpperCase()}`);
  assert.is(d.algorithm, 'sha256');
  assert.is(formatDigest(d), `sha256:${HELLO}`);
  assert.is(parseDigest(HELLO).algorithm, 'sha256');
  assert.is(parseDigest('ab'.repeat(64)).algorithm, 'sha512');
});

test('refuses wrong lengths, unknown algorithms and junk', () => {
  for (const bad of ['', 'sha256:', `sha256:${HELLO}00`, `sha512:${HELLO}`, `md5:${HELLO}`, 'zz'.repeat(32), 'abc']) {
    assert.throws(() => parseDigest(bad), (e: unknown) => e instanceof DigestSyntaxError, bad);
  }
});

test('digestsEqual compares algorithm and bytes', () => {
  const a = parseDigest(HELLO);
  assert.ok(digestsEqual(a, parseDigest(`sha256:${HELLO}`)));
  assert.not.ok(digestsEqual(a, parseDigest(HELLO.replace(/4$/, '5'))));
  assert.not.ok(digestsEqual(a, parseDigest('00'.repeat(64))));
});

test.run();
