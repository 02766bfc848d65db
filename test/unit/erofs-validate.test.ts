// The strict reader refuses malformed images with one StepError('validate-image') naming the offset.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StepError } from '../../src/errors.ts';
import { dumpImage } from '../../src/erofs/dump.ts';
import { crc32c } from '../../src/erofs/format.ts';
import { ErofsReader, ImageError, type ParsedInode } from '../../src/erofs/reader.ts';
import { validateImage, walkImage } from '../../src/erofs/validate.ts';
import { writeImage } from '../../src/erofs/writer.ts';
import { mutate, Random } from './erofs-mutate.ts';
import { dir, file, sampleTree, symlink, xattr } from './erofs-trees.ts';

const IMAGE = writeImage(sampleTree(), { algorithm: 'sha256' }).image;
const validate = (image: Buffer) => validateImage(image);

/** Asserts a refusal whose message names `offset` (and matches `reason` when given). */
function refused(image: Buffer, offset: number | undefined, reason?: RegExp): void {
  try {
    validate(image);
  } catch (error) {
    assert.instance(error, StepError);
    const step = error as StepError;
    assert.is(step.step, 'validate-image');
    if (offset !== undefined) assert.match(step.message, new RegExp(`at offset ${offset}$`), step.message);
    if (reason !== undefined) assert.match(step.message, reason);
    return;
  }
  assert.unreachable('the image was accepted');
}

function edit(change: (image: Buffer) => void): Buffer {
  const copy = Buffer.from(IMAGE);
  change(copy);
  return copy;
}

const base = new ErofsReader(IMAGE);
const root = base.inode(base.rootNid);
const rootEntries = base.readDir(root);
const entry = (name: string) => rootEntries.find((e) => e.name === name)!;
const inodeOf = (name: string): ParsedInode => base.inode(entry(name).nid);
/** Offset of the root directory's first data block (its entries do not fit inline). */
const rootBlock = root.union * 4096;

test('the unmodified image is accepted', () => {
  assert.is(validate(IMAGE).isComposefs, true);
  assert.ok(root.layout === 0 || root.layout === 2);
  assert.ok(rootBlock > 0);
});

test("composefs-rs' header (format version 2, no ACL flag even with ACLs) is accepted, and its ACLs reported", () => {
  const big = inodeOf('big');
  assert.is(big.layout, 4);
  const image = edit((b) => {
    b.writeUInt32LE(2, 12);
    b.writeUInt32LE(0, 8);
    b.writeUInt16LE(31, big.offset + 16); // composefs-rs: one chunk of 2^43 bytes for every external file
  });
  assert.equal(validate(image).hasAcls, true);
});

test('truncated images are refused', () => {
  for (const size of [0, 100, 1024, 1151, 4096, IMAGE.length - 4096, IMAGE.length - 1]) {
    refused(IMAGE.subarray(0, size), undefined, /too small|not a multiple|blocks|past the end/);
  }
});

test('superblock corruption is refused at the field it hits', () => {
  refused(edit((b) => b.writeUInt32LE(0xdeadbeef, 1024)), 1024, /magic/);
  refused(edit((b) => b.writeUInt32LE(b.readUInt32LE(1032) | 0x8, 1032)), 1032, /compatible features/);
  refused(edit((b) => b.writeUInt8(13, 1036)), 1036, /block size/);
  refused(edit((b) => b.writeUInt32LE(0x10, 1104)), 1104, /incompatible features 0x10/);
  refused(edit((b) => b.writeUInt32LE(b.readUInt32LE(1060) + 1, 1060)), 1060, /blocks/);
  refused(edit((b) => b.writeUInt32LE(999_999, 1064)), 1064, /metadata block/);
  refused(edit((b) => b.writeUInt32LE(999_999, 1068)), 1068, /shared xattr block/);
  refused(edit((b) => b.writeUInt16LE(0xffff, 1038)), 0xffff * 32, /outside the image|nid/);
  refused(edit((b) => b.writeUInt32LE(2, 4)), 4, /composefs header version/);
  refused(edit((b) => b.writeUInt32LE(3, 12)), 12, /composefs format version 3/);
});

test('a superblock checksum (SB_CHKSUM, as erofs-utils writes) is verified; CHUNKED_FILE is known', () => {
  assert.is((crc32c(0xffffffff, Buffer.from('123456789')) ^ 0xffffffff) >>> 0, 0xe3069283);
  const withChecksum = edit((b) => {
    b.writeUInt32LE(b.readUInt32LE(1032) | 1, 1032);
    b.writeUInt32LE(b.readUInt32LE(1104) | 4, 1104);
    const rest = Buffer.from(b.subarray(1024, 4096));
    rest.writeUInt32LE(0, 4);
    b.writeUInt32LE(crc32c(0xffffffff, rest), 1028);
  });
  assert.is(validate(withChecksum).inodes, validate(IMAGE).inodes);
  const flipped = Buffer.from(withChecksum);
  flipped[1024 + 64] ^= 1; // volume name: not otherwise checked
  refused(flipped, 1028, /superblock checksum/);
});

test('inode corruption is refused at the inode', () => {
  const r = root.offset;
  refused(edit((b) => b.writeUInt16LE((1 << 1) | (b.readUInt16LE(r) & 1), r)), r, /data layout 1/);
  refused(edit((b) => b.writeUInt16LE(0x40 | b.readUInt16LE(r), r)), r, /format bits/);
  refused(edit((b) => b.writeUInt16LE(0o170755, r + 4)), r + 4, /file type/);
  const dirOffset = inodeOf('many').offset;
  refused(edit((b) => b.writeUInt32LE(0x0fffffff, dirOffset + 16)), dirOffset + 16, /data blocks/);
  const link = inodeOf('link');
  refused(edit((b) => b.writeUInt32LE(0, link.offset + 8)), link.offset + 8, /symlink target length 0/);
  const fifo = inodeOf('fifo');
  refused(edit((b) => b.writeUInt32LE(100, fifo.offset + 8)), fifo.offset + 8, /special file with size/);
  const nul = inodeOf('one');
  refused(edit((b) => b.writeUInt16LE(0xffff, nul.offset + 2)), nul.offset + 2, /xattrs .* past the end|past the end/);
});

test('directory entry corruption is refused at the entry', () => {
  refused(edit((b) => b.writeUInt16LE(5, rootBlock + 8)), rootBlock + 8, /first name offset/);
  refused(edit((b) => b.writeBigUInt64LE(1n << 40n, rootBlock + 12)), rootBlock + 12, /outside the image/);
  // Entry names out of order: swap the first two name bytes of the block's names.
  const firstName = rootBlock + IMAGE.readUInt16LE(rootBlock + 8);
  refused(edit((b) => { b[firstName] = 0x7a; }), undefined, /ascending order/);
  refused(edit((b) => b.writeUInt8(9, rootBlock + 10)), rootBlock + 10, /invalid file type 9/);
  // A directory entry whose type says "regular file" for a directory.
  const many = entry('many');
  const manyDirent = findDirent(many.nid);
  refused(edit((b) => b.writeUInt8(1, manyDirent + 10)), undefined, /file type 1 but inode/);
  // A loop: a subdirectory entry pointing back at the root.
  refused(edit((b) => b.writeBigUInt64LE(BigInt(root.nid), manyDirent)), undefined, /second time|'\.\.' points/);
});

test('structures shared by two inodes are refused (overlapping inodes, one data block for two directories)', () => {
  const many = inodeOf('many');
  refused(edit((b) => b.writeUInt32LE(root.union, many.offset + 16)), many.offset + 16, /data block \d+ belongs to another inode/);
  // 'one' pointed at the second half of the extended inode of 'object65', rewritten to read as a valid empty
  // file while 'object65' stays valid: only the overlap is wrong.
  const object = inodeOf('object65');
  assert.ok(object.extended);
  const fake = object.nid + 1;
  const oneDirent = findDirent(entry('one').nid);
  refused(edit((b) => {
    b.writeBigUInt64LE(BigInt(fake), oneDirent);
    b.fill(0, fake * 32, fake * 32 + 32);
    b.writeUInt16LE(0o100644, fake * 32 + 4);
    b.writeUInt16LE(1, fake * 32 + 6);
    b.writeUInt32LE(1, fake * 32 + 12); // the object's nlink
  }), fake * 32, /inode \d+ overlaps another inode/);
});

test('work stays proportional to the image: thousands of names of one inode with 40 KB of xattrs are read once', () => {
  const heavy = file('x'.repeat(100), { xattrs: Array.from({ length: 40 }, (_, i) => xattr(`user.big-${i}`, Buffer.alloc(1000, i))) });
  const names: Record<string, typeof heavy> = {};
  for (let i = 0; i < 3000; i++) names[`name-${i}`] = heavy;
  const { image } = writeImage(dir({ d: dir(names) }), { algorithm: 'sha256' });
  // Every inode (and with it its 40 KB of xattrs) is parsed once, however many names reach it.
  class CountingReader extends ErofsReader {
    parsed = 0;
    override inode(nid: number): ParsedInode {
      this.parsed += 1;
      return super.inode(nid);
    }
  }
  const reader = new CountingReader(image);
  assert.is(walkImage(reader).inodes, 256 + 3);
  assert.is(reader.parsed, 256 + 3);
  assert.is(validateImage(image).inodes, 256 + 3);
});

test('a NUL byte in a symlink target (inline or in a block) is refused', () => {
  for (const target of ['short-target-x', `${'t'.repeat(3000)}x`]) {
    const { image } = writeImage(dir({ link: symlink(target) }), { algorithm: 'sha256' });
    assert.is(validate(image).inodes, 256 + 2);
    const at = image.indexOf(Buffer.from(target));
    assert.ok(at > 0, 'the target is in the image');
    const broken = Buffer.from(image);
    broken[at + target.length - 1] = 0;
    refused(broken, undefined, /NUL byte in symlink target/);
  }
});

test('a shared xattr id outside the image is refused', () => {
  const shared = root.xattrs.find((x) => x.shared);
  assert.ok(shared, 'the root carries a shared xattr');
  const idAt = root.offset + (root.extended ? 64 : 32) + 12;
  refused(edit((b) => b.writeUInt32LE(0x3fffffff, idAt)), idAt, /shared xattr id/);
});

test('an xattr name filter that would hide a present xattr is refused', () => {
  const at = root.offset + (root.extended ? 64 : 32);
  refused(edit((b) => b.writeUInt32LE(0xffffffff, at)), undefined, /name filter hides/);
});

test('the name filter is checked on every inode, also where the same name was checked before', () => {
  // Inline (distinct values): the filter bit of 'user.same' is computed for the first file and reused after.
  const { image } = writeImage(dir({
    a: file('a', { xattrs: [xattr('user.same', 'one'), xattr('user.other', '1')] }),
    b: file('b', { xattrs: [xattr('user.same', 'two'), xattr('user.other', '2')] }),
  }), { algorithm: 'sha256' });
  assert.is(validateImage(image).inodes, 3 + 256);
  const reader = new ErofsReader(image);
  const second = reader.readDir(reader.inode(reader.rootNid)).find((e) => e.name === 'b')!;
  const node = reader.inode(second.nid);
  assert.is(node.xattrs.filter((x) => !x.shared).length, 2);
  const filterAt = node.offset + (node.extended ? 64 : 32);
  const copy = Buffer.from(image);
  copy.writeUInt32LE(0xffffffff, filterAt);
  refused(copy, undefined, /name filter hides 'user\.(same|other)'/);
});

/** The image offset of the value of `name` on inode `node` (of IMAGE). */
function xattrValueAt(node: ParsedInode, name: string): { at: number; size: number } {
  const found = node.xattrs.find((x) => x.name === name);
  if (found === undefined) throw new Error(`inode ${node.nid} has no ${name}`);
  return { at: found.valueStart, size: found.valueSize };
}

const DIGESTLESS = /redirected to an object but the image records no fs-verity digest .*composefs\.enabled = verity.* prepare-root\.conf, or fs-verity enabled on the objects before deploying/;

test('issue 13: a redirected file without an fs-verity digest (as ostree writes with composefs.enabled = yes) is refused, naming the fix', () => {
  // The writer writes an empty trusted.overlay.metacopy for an external file without a digest, as libcomposefs does.
  const { digest: _, ...noDigest } = file('q'.repeat(5000));
  const image = writeImage(dir({ usr: dir({ bin: dir({ tool: noDigest, fine: file('f'.repeat(5000)) }) }) }), { algorithm: 'sha256' }).image;
  const reader = new ErofsReader(image);
  const usr = reader.inode(reader.readDir(reader.inode(reader.rootNid)).find((e) => e.name === 'usr')!.nid);
  const bin = reader.inode(reader.readDir(usr).find((e) => e.name === 'bin')!.nid);
  const tool = reader.inode(reader.readDir(bin).find((e) => e.name === 'tool')!.nid);
  assert.is(tool.xattrs.find((x) => x.name === 'trusted.overlay.metacopy')!.valueSize, 0);
  assert.ok(tool.xattrs.some((x) => x.name === 'trusted.overlay.redirect'));
  try {
    validate(image);
    assert.unreachable('the digest-less image was accepted');
  } catch (error) {
    assert.instance(error, StepError);
    assert.is((error as StepError).step, 'validate-image');
    assert.match((error as StepError).message, DIGESTLESS);
    assert.match((error as StepError).message, /^validate-image: 'tool' \(inode \d+, offset \d+\)/);
  }
  // Where no read is checked (sealroot mount --verity=off, sealroot inspect), the image is still well formed.
  assert.is(validateImage(image, { requireDigests: false }).isComposefs, true);
  const lines: string[] = [];
  dumpImage(reader, (text) => lines.push(text));
  assert.match(lines.join(''), /^\/usr\/bin\/tool 5000 100644 .* - -$/m);
});

test('issue 13: mutated metacopy values: no digest (algorithm 0, 4-byte header) or a malformed one are refused before mount', () => {
  const big = inodeOf('big');
  const { at, size } = xattrValueAt(big, 'trusted.overlay.metacopy');
  assert.is(size, 36);
  assert.is(validate(IMAGE).isComposefs, true);
  // Algorithm 0 with len 36: the kernel reads a digest-less or malformed metacopy; either way the image is refused.
  refused(edit((b) => b.writeUInt8(0, at + 3)), undefined, /metacopy of 36 bytes is not a struct ovl_metacopy with a digest/);
  // SHA-512 announced for a 32-byte digest, a wrong len, a version the kernel does not know.
  refused(edit((b) => b.writeUInt8(2, at + 3)), at, /not a struct ovl_metacopy/);
  refused(edit((b) => b.writeUInt8(35, at + 1)), at, /not a struct ovl_metacopy/);
  refused(edit((b) => b.writeUInt8(1, at)), at, /not a struct ovl_metacopy/);
  // A changed digest byte is well formed: the kernel's verity=require check catches it when the object is read.
  assert.is(validate(edit((b) => { b[at + 4] = b[at + 4]! ^ 1; })).isComposefs, true);
});

test('fuzz: mutated images are refused cleanly or read fully, never crash', () => {
  const random = new Random(0x5ea1);
  let accepted = 0;
  let refusedCount = 0;
  const targets = [root.offset, ...rootEntries.map((e) => base.inode(e.nid).offset), rootBlock, base.info.superblock.xattrBlockAddress * 4096];
  for (let i = 0; i < 400; i++) {
    const image = mutate(IMAGE, random, targets);
    try {
      validate(image);
      // Accepted: a full listing must read without any error at all.
      dumpImage(new ErofsReader(image), () => {});
      accepted += 1;
    } catch (error) {
      if (!(error instanceof StepError && error.step === 'validate-image') && !(error instanceof ImageError)) {
        throw new Error(`case ${i}: unexpected ${(error as Error).stack}`);
      }
      refusedCount += 1;
    }
  }
  assert.ok(refusedCount > 80, `only ${refusedCount} refusals`);
  assert.ok(accepted > 3, `only ${accepted} accepted (mutations outside checked fields should pass)`);
});

function findDirent(nid: number): number {
  const size = Number(root.size);
  for (let block = 0; block * 4096 < size; block++) {
    const start = block === Math.ceil(size / 4096) - 1 && root.layout === 2 ? root.offset + root.headSize : rootBlock + block * 4096;
    const count = IMAGE.readUInt16LE(start + 8) / 12;
    for (let i = 0; i < count; i++) if (Number(IMAGE.readBigUInt64LE(start + i * 12)) === nid) return start + i * 12;
  }
  throw new Error(`no dirent for nid ${nid}`);
}

test.run();
