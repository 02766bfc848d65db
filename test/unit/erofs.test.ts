// The composefs image writer and the strict reader, on in-memory trees.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { dumpImage, escapeDump } from '../../src/erofs/dump.ts';
import { parseDump } from '../../src/erofs/dumpfile.ts';
import { decodeComposefsHeader, decodeSuperblock, xattrNameFilter, xxh32 } from '../../src/erofs/format.ts';
import { ErofsReader } from '../../src/erofs/reader.ts';
import { validateImage, type ImageSummary } from '../../src/erofs/validate.ts';
import { writeImage } from '../../src/erofs/writer.ts';
import { dir, file, sampleTree, special, symlink, xattr } from './erofs-trees.ts';

const validate = (image: Buffer): ImageSummary => validateImage(image);
function dump(image: Buffer): string {
  let out = '';
  dumpImage(new ErofsReader(image), (text) => { out += text; });
  return out;
}

test('xxh32 matches the reference vectors', () => {
  assert.is(xxh32(Buffer.alloc(0), 0), 0x02cc5d05);
  assert.is(xxh32(Buffer.from('abc'), 0), 0x32d153ff);
  assert.is(xxh32(Buffer.from('Nobody inspects the spammish repetition'), 0), 0xe2293b2f);
});

test('the xattr name filter clears exactly the bits of the names present', () => {
  assert.is(xattrNameFilter([]), 0xffffffff);
  const one = xattrNameFilter([Buffer.from('user.a')]);
  assert.is(32 - one.toString(2).replaceAll('0', '').length, 1);
});

test('a sample tree: header, superblock and the listing are what was written', () => {
  const { image, inodes, composefsVersion } = writeImage(sampleTree(), { algorithm: 'sha256' });
  assert.is(image.length % 4096, 0);
  const header = decodeComposefsHeader(image);
  assert.is(header.magic, 0xd078629a);
  assert.is(header.flags, 1, 'HAS_ACL');
  assert.is(composefsVersion, 0);
  const sb = decodeSuperblock(image.subarray(1024));
  assert.is(sb.blocks * 4096, image.length);
  assert.is(Number(sb.inodeCount), inodes);
  const summary = validate(image);
  assert.equal(summary, { hasAcls: true, isComposefs: true, inodes, blockSize: 4096 });
  const lines = dump(image).split('\n');
  assert.ok(lines.includes('/one 1 100644 1 0 0 0 1700000000.0 - 1 -'), 'inline file');
  assert.ok(lines.some((line) => /^\/object65 65 100644 1 0 0 0 1700000005\.123456789 [0-9a-f]{2}\/[0-9a-f]{62} - [0-9a-f]{64}$/.test(line)), 'object file');
  assert.ok(lines.some((line) => line.startsWith('/big 12305 100644 1 70000 80000 ')), 'extended inode owner');
  assert.ok(lines.includes('/null 0 20644 1 0 0 259 1700000000.0 - - -'));
  assert.ok(lines.some((line) => line.startsWith('/links/second ') && line.includes(' @100644 3 ') && line.includes(' /links/first ')), 'hard link');
  const xattrLine = lines.find((line) => line.startsWith('/xattrs '))!;
  for (const field of ['trusted.overlay.custom=escaped', 'user.empty=', 'user.bin=\\x00\\xff\\x3d\\n', 'security.selinux=label', 'user.shared=same\\x20everywhere']) {
    assert.ok(xattrLine.split(' ').includes(field), `${field} in ${xattrLine}`);
  }
  assert.ok(lines.includes('/deep/level-1 46 40755 3 0 0 0 1700000000.0 - - -'), 'nested directory');
  assert.ok(lines.some((line) => line.startsWith(`/deep${Array.from({ length: 20 }, (_, i) => `/level-${i + 1}`).join('')}/bottom 6 `)), 'deepest file');
  assert.is(lines.filter((line) => line.startsWith('/many/entry-')).length, 600);
  assert.not.ok(lines.some((line) => /^\/[0-9a-f]{2} /.test(line)), 'root whiteouts are not listed');
});

test('sha512 objects: metacopy carries a 64-byte digest with algorithm 2', () => {
  const { image } = writeImage(dir({ f: file('q'.repeat(100), {}, 'sha512') }), { algorithm: 'sha512' });
  validate(image);
  const line = dump(image).split('\n').find((l) => l.startsWith('/f '))!;
  assert.match(line, /^\/f 100 100644 1 0 0 0 1700000000\.0 [0-9a-f]{2}\/[0-9a-f]{126} - [0-9a-f]{128}$/);
  const at = image.indexOf(Buffer.from('metacopy'));
  assert.ok(at > 0);
  assert.equal([...image.subarray(at + 8, at + 12)], [0, 68, 0, 2]);
});

test('the same tree in any insertion order gives the same bytes', () => {
  const a = dir({ b: file('b'), a: file('a'.repeat(100)), c: dir({ z: file('z'), y: special('fifo') }) });
  const b = dir({ c: dir({ y: special('fifo'), z: file('z') }), a: file('a'.repeat(100)), b: file('b') });
  assert.ok(writeImage(a, { algorithm: 'sha256' }).image.equals(writeImage(b, { algorithm: 'sha256' }).image));
});

test('whiteouts raise the format version to 1 and become escaped whiteouts', () => {
  const { image, composefsVersion } = writeImage(dir({ w: dir({ gone: special('chr', 0) }) }), { algorithm: 'sha256' });
  assert.is(composefsVersion, 1);
  assert.is(decodeComposefsHeader(image).composefsVersion, 1);
  validate(image);
  const lines = dump(image).split('\n');
  assert.ok(lines.includes('/w/gone 0 20644 1 0 0 0 1700000000.0 - - -'), lines.join('\n'));
  assert.ok(lines.some((line) => line.startsWith('/w ') && line.includes('trusted.overlay.opaque=x') && line.includes('user.overlay.opaque=x')));
  assert.ok(image.includes(Buffer.from('overlay.whiteout')));
});

test('an mtime before 1970 is stored as a signed 64-bit time and read back as such', () => {
  const { image } = writeImage(dir({ old: file('o', { mtimeSec: -31_536_000n, mtimeNsec: 250_000_000 }) }), { algorithm: 'sha256' });
  validate(image);
  assert.is(decodeSuperblock(image.subarray(1024)).buildTime, -31_536_000n);
  assert.ok(dump(image).split('\n').includes('/old 1 100644 1 0 0 0 -31536000.250000000 - o -'));
});

test('a dump read back (mkimage --from-file) gives the same image', () => {
  for (const tree of [sampleTree(), dir({ w: dir({ gone: special('chr', 0) }), 'a b': file('x\n=\\') })]) {
    const { image } = writeImage(tree, { algorithm: 'sha256' });
    const again = writeImage(parseDump(dump(image)), { algorithm: 'sha256' }).image;
    assert.ok(again.equals(image), 'images differ');
  }
});

test('parseDump refuses malformed dumps with the line number', () => {
  const root = '/ 0 40755 2 0 0 0 0.0 - - -\n';
  assert.throws(() => parseDump('/a 0 100644 1 0 0 0 0.0 - - -\n'), /line 1: the root \(\/\) must come first/);
  assert.throws(() => parseDump(`${root}/a/b 0 100644 1 0 0 0 0.0 - - -\n`), /line 2: no directory \/a/);
  assert.throws(() => parseDump(`${root}/a 0 100644 1 0 0 0 0.0 - - -\n/a 0 100644 1 0 0 0 0.0 - - -\n`), /line 3: \/a listed twice/);
  assert.throws(() => parseDump(`${root}/a 0 109999 1 0 0 0 0.0 - - -\n`), /line 2: invalid mode/);
  assert.throws(() => parseDump(`${root}/a 3 100644 1 0 0 0 0.0 - ab -\n`), /line 2: content of 2 bytes for size 3/);
  assert.throws(() => parseDump(`${root}/a 0 @100644 1 0 0 0 0.0 /nowhere - -\n`), /line 2: hard link target \/nowhere not found/);
  assert.throws(() => parseDump(`${root}/a 0 100644 1 0 0 0 0.0 \\q - -\n`), /line 2: unsupported escape/);
});

test('escapeDump follows composefs-info: C escapes, \\xNN for non-graphic bytes, = only when asked, a lone dash', () => {
  assert.is(escapeDump(Buffer.from('a b\\c\n\t\r=')), 'a\\x20b\\\\c\\n\\t\\r=');
  assert.is(escapeDump(Buffer.from('='), 1), '\\x3d');
  assert.is(escapeDump(Buffer.from('-'), 2), '\\x2d');
  assert.is(escapeDump(Buffer.from([0xe9])), '\\xe9');
});

test('writeImage refuses a root that is not a directory and a hard-linked directory', () => {
  assert.throws(() => writeImage(file('x'), { algorithm: 'sha256' }), /root of an image must be a directory/);
  const shared = dir({});
  assert.throws(() => writeImage(dir({ a: shared, b: shared }), { algorithm: 'sha256' }), /"\/b": a directory cannot have two names/);
});

test('writeImage refuses what EROFS cannot hold, naming the path', () => {
  const write = (tree: ReturnType<typeof dir>) => () => writeImage(tree, { algorithm: 'sha256' });
  assert.throws(write(dir({ ['x'.repeat(256)]: file('') })), /invalid file name/);
  assert.throws(write(dir({ d: dir({ f: file('', { xattrs: [xattr('user.big', Buffer.alloc(65536))] }) }) })), /"\/d\/f": xattr "user.big" has a 65536-byte value/);
  assert.throws(write(dir({ l: symlink('t'.repeat(4096)) })), /"\/l": a symlink target must be 1 to 4095 bytes/);
  const many = Array.from({ length: 20 }, (_, i) => xattr(`user.a${i}`, Buffer.alloc(4000)));
  assert.throws(write(dir({ f: file('', { xattrs: many }) })), /xattrs of \d+ bytes on one inode/);
});

test.run();
