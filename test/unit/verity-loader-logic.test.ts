// The pure decisions around the loader: which verification path runs (kernel fs-verity or userspace) and the
// parsing of the digest/load command options.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseMerkleOptions } from '../../src/cli/digest.ts';
import { parseSize } from '../../src/cli/load.ts';
import { UsageError } from '../../src/cli/command.ts';
import { chooseMethod } from '../../src/image/method.ts';
import { parseDigest } from '../../src/verity/digest.ts';

const EXPECTED = parseDigest(`sha256:${'ab'.repeat(32)}`);
const TRUSTED = [EXPECTED];

test('kernel fast path only when the source has fs-verity with the same algorithm and the very same digest', () => {
  const same = { algorithm: 1, digest: Buffer.from(EXPECTED.bytes) };
  assert.is(chooseMethod(same, TRUSTED, false).method, 'kernel-fsverity');
  assert.match(chooseMethod(same, TRUSTED, false).reason, /kernel verifies every block/);

  const none = chooseMethod(undefined, TRUSTED, false);
  assert.is(none.method, 'userspace');
  assert.match(none.reason, /no fs-verity/);

  const otherDigest = { algorithm: 1, digest: Buffer.from(EXPECTED.bytes).fill(0xcd, 31) };
  assert.is(chooseMethod(otherDigest, TRUSTED, false).method, 'userspace');
  assert.match(chooseMethod(otherDigest, TRUSTED, false).reason, /not a trusted one/);

  // SHA-512 measured, SHA-256 trusted (even with bytes that would match the prefix): userspace decides.
  const sha512 = { algorithm: 2, digest: Buffer.concat([EXPECTED.bytes, EXPECTED.bytes]) };
  assert.is(chooseMethod(sha512, TRUSTED, false).method, 'userspace');
  assert.match(chooseMethod(sha512, TRUSTED, false).reason, /uses sha512, not sha256/);

  // A truncated measurement (digest_size shorter) never matches.
  assert.is(chooseMethod({ algorithm: 1, digest: EXPECTED.bytes.subarray(0, 16) }, TRUSTED, false).method, 'userspace');

  // A compressed image is never taken on the kernel's word: its digest is that of the decompressed bytes.
  assert.is(chooseMethod(same, TRUSTED, true).method, 'userspace');

  // A trusted set: the kernel path when the source's digest is any member.
  const other = parseDigest(`sha256:${'cd'.repeat(32)}`);
  assert.is(chooseMethod(same, [other, EXPECTED], false).method, 'kernel-fsverity');
  assert.is(chooseMethod(same, [other], false).method, 'userspace');
});

test('digest options: fsverity-utils syntax, repeated options and bad values are usage errors', () => {
  assert.equal(parseMerkleOptions({}), { algorithm: 'sha256', blockSize: 4096, salt: undefined });
  const parsed = parseMerkleOptions({ 'hash-alg': ['sha512'], 'block-size': ['04096'], salt: ['00ff'] });
  assert.is(parsed.algorithm, 'sha512');
  assert.is(parsed.blockSize, 4096);
  assert.equal([...parsed.salt!], [0, 255]);
  const usage = (values: Parameters<typeof parseMerkleOptions>[0]) =>
    assert.throws(() => parseMerkleOptions(values), (e: unknown) => e instanceof UsageError, JSON.stringify(values));
  usage({ 'hash-alg': ['sha1'] });
  usage({ 'hash-alg': ['sha256', 'sha512'] });
  usage({ 'block-size': ['3000'] });
  usage({ 'block-size': ['4k'] });
  usage({ 'block-size': ['2147483648'] });
  usage({ salt: ['zz'] });
  usage({ salt: ['abc'] });
});

test('--max-size accepts bytes and K/M/G suffixes, nothing else', () => {
  assert.is(parseSize('512'), 512);
  assert.is(parseSize('64K'), 65536);
  assert.is(parseSize('256M'), 256 << 20);
  assert.is(parseSize('2G'), 2 ** 31);
  assert.is(parseSize('1GiB'), 2 ** 30);
  for (const bad of ['', '-1', '1.5M', 'M', '12T', '99999999999999999999']) {
    assert.throws(() => parseSize(bad), (e: unknown) => e instanceof UsageError, bad);
  }
});

test.run();
