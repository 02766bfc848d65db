// The kernel reads what mkimage writes: image -> loop device (src/sys/loop.ts) -> EROFS -> overlayfs with the
// objects directory as data-only lower layer (`lowerdir=MNT::OBJECTS,metacopy=on,redirect_dir=on`; verity is
// proven in the QEMU tier, this host has no fs-verity), and every path, attribute, xattr and byte compared
// with the source tree.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { validateImage } from '../../src/erofs/validate.ts';
import { AT_FDCWD, O_RDONLY, openAt } from '../../src/sys/files.ts';
import { closeFd } from '../../src/sys/io.ts';
import { LO_FLAGS_AUTOCLEAR, LO_FLAGS_READ_ONLY, loopConfigure, loopGetFree } from '../../src/sys/loop.ts';
import { getXattr, listXattrs } from '../../src/sys/xattr.ts';
import { check, requireRoot, requireTools, ROOT, run } from '../helpers/tools.ts';
import { type FixtureOptions, makeFixture } from './erofs-fixture.ts';

const NODE = path.join(ROOT, 'node_modules/.bin/node');
const MAIN = path.join(ROOT, 'src/cli/main.ts');

const join = (dir: Buffer, name: Buffer): Buffer => Buffer.concat([dir, Buffer.from('/'), name]);
const show = (p: Buffer): string => JSON.stringify(p.toString('latin1'));

function xattrsOf(file: Buffer): Map<string, string> {
  return new Map(listXattrs(file).map((name) => [name.toString('latin1'), getXattr(file, name).toString('hex')]));
}

/** Attaches `image` read-only to a free loop device; returns the device path and its fd (close after mounting). */
function attach(image: string): { device: string; fd: number } {
  const backing = fs.openSync(image, 'r');
  try {
    for (let attempt = 0; attempt < 10; attempt++) {
      const device = `/dev/loop${loopGetFree()}`;
      const fd = openAt(AT_FDCWD, device, O_RDONLY);
      try {
        loopConfigure(fd, { backingFd: backing, blockSize: 4096, flags: LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR, fileName: 'sealroot-erofs-test' }, device);
        return { device, fd };
      } catch (error) {
        closeFd(fd);
        if (!(error instanceof Error && 'code' in error && error.code === 'EBUSY')) throw error;
      }
    }
    throw new Error('no free loop device after 10 attempts');
  } finally {
    fs.closeSync(backing);
  }
}

function mountAndCompare(fixture: FixtureOptions, algorithm: 'sha256' | 'sha512', minimumPaths: number): void {
  requireRoot();
  requireTools('mount', 'umount');
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-erofs-mount-'));
  const mounted: string[] = [];
  let loopFd: number | undefined;
  try {
    const source = path.join(work, 'tree');
    makeFixture(source, fixture);
    const image = path.join(work, 'image.cfs');
    const objects = path.join(work, 'objects');
    check(NODE, [MAIN, 'mkimage', `--hash-alg=${algorithm}`, `--digest-store=${objects}`, source, image], { env: { ...process.env, SEALROOT_KMSG: '0' } });
    const someObject = fs.readdirSync(objects, { recursive: true }).map(String).find((name) => name.includes('/'))!;
    assert.is(someObject.length, algorithm === 'sha256' ? 65 : 129, `object path ${someObject}`);
    const bytes = fs.readFileSync(image);
    const summary = validateImage(bytes);
    assert.is(summary.hasAcls, fixture.acl === true, 'hasAcls');

    const erofs = path.join(work, 'erofs');
    const overlay = path.join(work, 'overlay');
    fs.mkdirSync(erofs);
    fs.mkdirSync(overlay);
    const loop = attach(image);
    loopFd = loop.fd;
    check('mount', ['-t', 'erofs', '-o', 'ro', loop.device, erofs]);
    mounted.push(erofs);
    closeFd(loopFd);
    loopFd = undefined;
    check('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${erofs}::${objects},metacopy=on,redirect_dir=on`, overlay]);
    mounted.push(overlay);

    let contentBytes = 0;
    const inodes = new Map<string, bigint>();
    const imageInodes = new Set<bigint>();
    let compared = 0;
    // Whiteouts (character devices 0/0) are escaped: the composefs mount shows an empty regular file carrying
    // the whiteout xattrs, and its directory the xwhiteouts markers, for an overlay stacked on top to act on.
    const isWhiteout = (st: fs.BigIntStats): boolean => st.isCharacterDevice() && st.rdev === 0n;
    const expectedXattrs = (src: Buffer, st: fs.BigIntStats): Map<string, string> => {
      const expected = xattrsOf(src);
      if (isWhiteout(st)) {
        expected.set('trusted.overlay.whiteout', '');
        expected.set('user.overlay.whiteout', '');
      } else if (st.isDirectory() && fs.readdirSync(src, { encoding: 'buffer' }).some((name) => isWhiteout(fs.lstatSync(join(src, name), { bigint: true })))) {
        for (const [name, value] of [['trusted.overlay.whiteouts', ''], ['user.overlay.whiteouts', ''], ['trusted.overlay.opaque', '78'], ['user.overlay.opaque', '78']]) expected.set(name!, value!);
      }
      return expected;
    };
    let whiteouts = 0;
    const walk = (src: Buffer, dst: Buffer): void => {
      const a = fs.lstatSync(src, { bigint: true });
      const b = fs.lstatSync(dst, { bigint: true });
      const where = show(src);
      if (isWhiteout(a)) {
        whiteouts += 1;
        assert.is(b.mode, 0o100000n | (a.mode & 0o7777n), `mode of whiteout ${where}`);
        assert.is(b.size, 0n, `size of whiteout ${where}`);
        assert.equal(xattrsOf(dst), expectedXattrs(src, a), `xattrs of whiteout ${where}`);
        compared += 1;
        return;
      }
      assert.is(b.mode, a.mode, `mode of ${where}`);
      assert.is(b.uid, a.uid, `uid of ${where}`);
      assert.is(b.gid, a.gid, `gid of ${where}`);
      assert.is(b.mtimeNs, a.mtimeNs, `mtime of ${where}`);
      assert.is(b.nlink, a.nlink, `nlink of ${where}`);
      if (!a.isDirectory()) assert.is(b.size, a.size, `size of ${where}`);
      if (a.isCharacterDevice() || a.isBlockDevice()) assert.is(b.rdev, a.rdev, `rdev of ${where}`);
      // The same source inode under several names is one inode in the image, and distinct ones stay distinct.
      const key = `${a.dev}:${a.ino}`;
      const seen = inodes.get(key);
      if (seen === undefined) {
        assert.not.ok(imageInodes.has(b.ino), `${where} shares an inode number it should not`);
        inodes.set(key, b.ino);
        imageInodes.add(b.ino);
      } else {
        assert.is(b.ino, seen, `hard link ${where}`);
      }
      assert.equal(xattrsOf(dst), expectedXattrs(src, a), `xattrs of ${where}`);
      if (a.isSymbolicLink()) {
        assert.ok(fs.readlinkSync(dst, { encoding: 'buffer' }).equals(fs.readlinkSync(src, { encoding: 'buffer' })), `target of ${where}`);
      } else if (a.isFile()) {
        const content = fs.readFileSync(src);
        assert.ok(fs.readFileSync(dst).equals(content), `content of ${where}`);
        contentBytes += content.length;
      } else if (a.isDirectory()) {
        const names = fs.readdirSync(src, { encoding: 'buffer' }).sort(Buffer.compare);
        const got = fs.readdirSync(dst, { encoding: 'buffer' }).sort(Buffer.compare);
        assert.equal(got.map(show), names.map(show), `entries of ${where}`);
        for (const name of names) walk(join(src, name), join(dst, name));
      }
      compared += 1;
    };
    walk(Buffer.from(source), Buffer.from(overlay));
    assert.ok(compared > minimumPaths, `only ${compared} paths compared`);
    assert.is(whiteouts, 2, 'whiteouts compared');
    assert.ok(contentBytes > 3 * 1024 * 1024, `only ${contentBytes} bytes of content compared`);
  } finally {
    for (const target of mounted.reverse()) {
      const result = run('umount', [target]);
      if (result.status !== 0) process.stderr.write(`erofs-mount test: umount ${target}: ${result.stderr}\n`);
    }
    if (loopFd !== undefined) closeFd(loopFd);
    fs.rmSync(work, { recursive: true, force: true });
  }
}

test('the kernel mounts the image; through overlayfs every path, attribute, xattr and byte equals the source', () => {
  mountAndCompare({ hardlinks: true, acl: true, whiteouts: true }, 'sha256', 3000);
});

test('the same with SHA-512 objects (bootc): 64-byte metacopy digests, 128-hex object names', () => {
  mountAndCompare({ hardlinks: true, whiteouts: true, manyEntries: 200, depth: 5 }, 'sha512', 300);
});

test('images made by erofs-utils mkfs.erofs (superblock checksum, chunked files) pass the validator; a changed byte does not', () => {
  requireRoot();
  requireTools('mkfs.erofs');
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-erofs-mkfs-'));
  try {
    const source = path.join(work, 'tree');
    makeFixture(source, { hardlinks: true, acl: true, manyEntries: 300, depth: 6 });
    // bookworm's mkfs.erofs (erofs-utils 1.5) fails on 255-byte names ("Could not format the device: ENOENT").
    fs.rmSync(path.join(source, 'n'.repeat(255)));
    fs.rmSync(path.join(source, 'd'.repeat(255)), { recursive: true });
    const image = path.join(work, 'mkfs.erofs');
    check('mkfs.erofs', ['--quiet', '--chunksize=4096', '-T0', image, source]);
    const bytes = fs.readFileSync(image);
    assert.is(bytes.readUInt32LE(1024 + 8) & 1, 1, 'erofs-utils set SB_CHKSUM');
    const summary = validateImage(bytes);
    assert.is(summary.isComposefs, false);
    assert.is(summary.hasAcls, true);
    const paths = new Set<string>();
    const count = (dir: Buffer): void => {
      for (const name of fs.readdirSync(dir, { encoding: 'buffer' })) {
        const file = join(dir, name);
        const st = fs.lstatSync(file);
        paths.add(`${st.dev}:${st.ino}`);
        if (st.isDirectory()) count(file);
      }
    };
    count(Buffer.from(source));
    assert.is(summary.inodes, paths.size + 1, 'inodes reached = distinct inodes of the tree + the root');
    bytes[1024 + 70] ^= 0x40; // in the volume name: only the checksum notices
    assert.throws(() => validateImage(bytes), /superblock checksum .* at offset 1028/);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
});

test.run();
