// src/sys/untrusted-file.ts: regular files only, checked on the fd before a byte is read; bounded; growth noticed.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfinedRoot } from '../../src/sys/confined-root.ts';
import { readUntrustedFile, readUntrustedText, readUntrustedTextIfExists, UntrustedFileError } from '../../src/sys/untrusted-file.ts';
import { exceptionsDuring } from '../helpers/exceptions.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-untrusted-'));
const refused = (kind: UntrustedFileError['kind'], pattern: RegExp) => (e: unknown) => e instanceof UntrustedFileError && e.kind === kind && pattern.test(e.message);

test('a regular file within the limit is read whole; one over it is refused by its size', () => {
  const file = path.join(dir, 'ok.json');
  fs.writeFileSync(file, '{"a":1}');
  assert.is(readUntrustedText(file, { maxBytes: 7 }), '{"a":1}');
  assert.throws(() => readUntrustedFile(file, { maxBytes: 6 }), refused('too-large', /ok\.json: is 7 bytes, over the limit of 6/));
  assert.is(readUntrustedTextIfExists(path.join(dir, 'missing'), { maxBytes: 10 }), undefined);
  assert.throws(() => readUntrustedFile(path.join(dir, 'missing'), { maxBytes: 10 }), refused('missing', /missing: does not exist/));
});

test('a FIFO (no writer), a directory, a device and a symlink are refused at once, nothing is read', () => {
  const fifo = path.join(dir, 'fifo');
  assert.is(spawnSync('mkfifo', [fifo]).status, 0);
  const started = performance.now();
  assert.throws(() => readUntrustedFile(fifo, { maxBytes: 100 }), refused('not-regular', /fifo: is a FIFO, not a regular file/));
  assert.ok(performance.now() - started < 1000, 'no blocking open or read');
  assert.throws(() => readUntrustedFile(dir, { maxBytes: 100 }), refused('not-regular', /is a directory/));
  assert.throws(() => readUntrustedFile('/dev/zero', { maxBytes: 100 }), refused('not-regular', /\/dev\/zero: is a character device/));
  fs.symlinkSync('/dev/zero', path.join(dir, 'zero-link'));
  assert.throws(() => readUntrustedFile(path.join(dir, 'zero-link'), { maxBytes: 100 }), refused('not-regular', /zero-link: is a symbolic link, not a regular file/));
  // Followed when the caller allows it: still a device, still refused.
  assert.throws(() => readUntrustedFile(path.join(dir, 'zero-link'), { maxBytes: 100, followLast: true }), refused('not-regular', /character device/));
});

test('a huge sparse file is refused by its size without being read; a file larger than fstat said is refused as grown', () => {
  const sparse = path.join(dir, 'sparse');
  fs.closeSync(fs.openSync(sparse, 'w'));
  fs.truncateSync(sparse, 2 ** 40);
  assert.throws(() => readUntrustedFile(sparse, { maxBytes: 1 << 20 }), refused('too-large', /is 1099511627776 bytes/));
  // procfs reports size 0 for files that have content: what a file growing between fstat and read looks like.
  assert.throws(() => readUntrustedFile('/proc/self/status', { maxBytes: 1 << 20, followLast: true }), refused('changed', /grew while it was read \(beyond 0 bytes\)/));
});

test('not UTF-8: refused as text', () => {
  const file = path.join(dir, 'latin1');
  fs.writeFileSync(file, Buffer.from([0x7b, 0xe9, 0x7d]));
  assert.throws(() => readUntrustedText(file, { maxBytes: 10 }), refused('unreadable', /is not UTF-8 text/));
});

test('under a registered root, a path is resolved inside it: a symlinked parent pointing out stays in', () => {
  const root = path.join(dir, 'root');
  const outside = path.join(dir, 'outside');
  fs.mkdirSync(path.join(root, 'state'), { recursive: true });
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'approvals.json'), 'outside');
  fs.symlinkSync(outside, path.join(root, 'state/tpm'));
  const confined = ConfinedRoot.open(root);
  try {
    // Unconfined, the parent symlink would be followed out of the root; confined, /outside does not exist in it.
    assert.throws(() => readUntrustedFile(path.join(root, 'state/tpm/approvals.json'), { maxBytes: 100 }), refused('missing', /does not exist/));
    fs.mkdirSync(path.join(root, outside), { recursive: true });
    fs.writeFileSync(path.join(root, outside, 'approvals.json'), 'inside');
    assert.is(readUntrustedText(path.join(root, 'state/tpm/approvals.json'), { maxBytes: 100 }), 'inside');
    assert.is(readUntrustedText(path.join(root, 'state/tpm/approvals.json'), { maxBytes: 100, under: null }), 'outside', 'under: null opts out (trusted paths)');
  } finally {
    confined.close();
  }
});

test('a file that may be absent: undefined without an exception when it is, read or refused as usual when it is not', () => {
  // Absent (also through a dangling symlink that is followed): no exception at all, caught or not.
  fs.symlinkSync(path.join(dir, 'nowhere'), path.join(dir, 'dangling'));
  const { result, thrown } = exceptionsDuring(() => [
    readUntrustedTextIfExists(path.join(dir, 'absent.toml'), { maxBytes: 10, under: null, followLast: true }),
    readUntrustedTextIfExists(path.join(dir, 'dangling'), { maxBytes: 10, under: null, followLast: true }),
  ]);
  assert.equal(result, [undefined, undefined]);
  assert.equal(thrown, []);
  fs.writeFileSync(path.join(dir, 'present.toml'), 'x = 1\n');
  assert.is(readUntrustedTextIfExists(path.join(dir, 'present.toml'), { maxBytes: 10, under: null, followLast: true }), 'x = 1\n');
  // Not followed: the symlink itself is there, and refused as before.
  assert.throws(() => readUntrustedTextIfExists(path.join(dir, 'dangling'), { maxBytes: 10, under: null }), refused('not-regular', /symbolic link/));
  assert.throws(() => readUntrustedTextIfExists(path.join(dir, 'present.toml'), { maxBytes: 3, under: null, followLast: true }), refused('too-large', /over the limit/));
  // A path through a file: not "absent" (ENOTDIR), refused with its reason.
  assert.throws(() => readUntrustedTextIfExists(path.join(dir, 'present.toml/x'), { maxBytes: 10, under: null, followLast: true }), refused('unreadable', /ENOTDIR/));
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
test.run();
