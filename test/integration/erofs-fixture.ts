// A varied source tree for the composefs image tests (needs root: devices, trusted.* xattrs, chown).
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { mknod, setTimes, setXattr } from '../../src/sys/xattr.ts';

export interface FixtureOptions {
  /** Files with several names (mkcomposefs 1.0.8 does not keep hard links of a directory source). */
  hardlinks?: boolean;
  /** Overlay whiteouts (character devices 0/0): the image then has composefs format version 1. */
  whiteouts?: boolean;
  /** A POSIX ACL xattr (system.posix_acl_access): sets the header's HAS_ACL flag. */
  acl?: boolean;
  /** Entries in the large directory. */
  manyEntries?: number;
  /** Levels of nesting. */
  depth?: number;
  /** A file with an mtime before 1970 (it then holds the minimum mtime: every other inode is extended). */
  before1970?: boolean;
}

const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;
const S_IFSOCK = 0o140000;

/** Deterministic pseudo-random bytes. */
export function pattern(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(seed).digest();
  for (let at = 0; at < size; at += block.length) {
    block.copy(out, at);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

/** The kernel's dev_t encoding of major:minor (glibc makedev, 32-bit range). */
export function makedev(major: number, minor: number): number {
  return ((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12)) >>> 0;
}

/** A POSIX ACL xattr value (include/uapi/linux/posix_acl_xattr.h): version 2, then (tag u16, perm u16, id u32). */
function aclValue(entries: [tag: number, perm: number, id: number][]): Buffer {
  const buf = Buffer.alloc(4 + entries.length * 8);
  buf.writeUInt32LE(2, 0);
  entries.forEach(([tag, perm, id], i) => {
    buf.writeUInt16LE(tag, 4 + i * 8);
    buf.writeUInt16LE(perm, 6 + i * 8);
    buf.writeUInt32LE(id, 8 + i * 8);
  });
  return buf;
}

const BASE_TIME = 1_700_000_000n;

/** Builds the tree at `root` (which must not exist). */
export function makeFixture(root: string, options: FixtureOptions = {}): void {
  const manyEntries = options.manyEntries ?? 3000;
  const depth = options.depth ?? 40;
  const times: [string, bigint, number][] = [];
  let clock = 0;
  // mtimes: mostly distinct with nanoseconds; every seventh path shares the tree's minimum (compact inodes).
  const stamp = (file: string): void => {
    clock += 1;
    if (clock % 7 === 0) times.push([file, BASE_TIME, 0]);
    else times.push([file, BASE_TIME + BigInt(clock), (clock * 7919) % 1_000_000_000]);
  };
  const file = (rel: string, content: Buffer, mode = 0o644): string => {
    const p = path.join(root, rel);
    fs.writeFileSync(p, content, { mode });
    fs.chmodSync(p, mode);
    stamp(p);
    return p;
  };
  const dir = (rel: string, mode = 0o755): string => {
    const p = path.join(root, rel);
    fs.mkdirSync(p, { mode });
    fs.chmodSync(p, mode);
    stamp(p);
    return p;
  };
  const x = (p: string, name: string, value: string | Buffer): void => setXattr(p, Buffer.from(name), typeof value === 'string' ? Buffer.from(value) : value);

  fs.mkdirSync(root, { mode: 0o755 });
  // Sizes around the inline limit (64) and the block size, and a few MiB.
  for (const size of [0, 1, 63, 64, 65, 2048, 4095, 4096, 4097, 8192, 3 * 1024 * 1024 + 123]) {
    file(`size-${size}`, pattern(`size-${size}`, size));
  }
  file('same-content-1', pattern('same', 10_000));
  file('same-content-2', pattern('same', 10_000)); // one object, shared metacopy/redirect xattrs
  const before1970 = options.before1970 === true ? file('before-1970', pattern('before-1970', 300)) : undefined;
  file('inline-same-1', Buffer.from('identical inline content\n'));
  file('inline-same-2', Buffer.from('identical inline content\n'));

  // Modes, owners.
  fs.chownSync(file('setuid', Buffer.from('#!/bin/sh\n'), 0o4755), 0, 0);
  file('setgid', Buffer.from('x'), 0o2711);
  file('no-access', pattern('no-access', 100), 0o000);
  file('private', pattern('private', 100), 0o600);
  const sticky = dir('sticky', 0o1777);
  const setgidDir = dir('setgid-dir', 0o2775);
  fs.chownSync(file('owned-1000', Buffer.from('a'), 0o640), 1000, 1000);
  fs.chownSync(file('owned-65534', pattern('nobody', 70)), 65534, 65534);
  fs.chownSync(file('owned-large', Buffer.from('large ids'), 0o644), 70_000, 80_000); // extended inode
  fs.chownSync(setgidDir, 1234, 5678);
  fs.chownSync(file(path.join('sticky', 'tmpfile'), Buffer.from('t')), 4321, 0);
  void sticky;

  // Special files.
  fs.symlinkSync('size-1', path.join(root, 'link-short'));
  stamp(path.join(root, 'link-short'));
  fs.symlinkSync('/absolute/target/that/does/not/exist', path.join(root, 'link-dangling'));
  stamp(path.join(root, 'link-dangling'));
  fs.symlinkSync('l'.repeat(1000), path.join(root, 'link-1000'));
  stamp(path.join(root, 'link-1000'));
  fs.symlinkSync('m'.repeat(4000), path.join(root, 'link-4000'));
  stamp(path.join(root, 'link-4000'));
  mknod(path.join(root, 'fifo'), S_IFIFO | 0o644, 0);
  stamp(path.join(root, 'fifo'));
  mknod(path.join(root, 'socket'), S_IFSOCK | 0o755, 0);
  stamp(path.join(root, 'socket'));
  mknod(path.join(root, 'null'), S_IFCHR | 0o666, makedev(1, 3));
  stamp(path.join(root, 'null'));
  mknod(path.join(root, 'loop-blk'), S_IFBLK | 0o660, makedev(7, 0));
  stamp(path.join(root, 'loop-blk'));
  mknod(path.join(root, 'big-dev'), S_IFCHR | 0o600, makedev(300, 70_000));
  stamp(path.join(root, 'big-dev'));

  // Extended attributes of every namespace, shared ones, escaped overlay ones, big ones.
  const xa = file('xattrs', pattern('xattrs', 200));
  x(xa, 'user.text', 'hello');
  x(xa, 'user.empty', '');
  x(xa, 'user.binary', Buffer.from([0, 1, 2, 0xff, 0x3d, 0x20, 0x0a]));
  x(xa, 'user.with=equals', 'a=b');
  x(xa, 'trusted.test', 'trusted value');
  x(xa, 'trusted.overlay.custom', 'escaped by the writer');
  x(xa, 'trusted.overlay.opaque', 'y');
  x(xa, 'security.test', 'security value');
  x(xa, 'user.big', pattern('big-xattr', 3000).toString('hex').slice(0, 3000));
  const many = file('many-xattrs', Buffer.from('m'));
  for (let i = 0; i < 40; i++) x(many, `user.attr-${String(i).padStart(2, '0')}`, `value ${i}`);
  for (let i = 0; i < 25; i++) x(file(`shared-${i}`, pattern(`shared-${i}`, 80)), 'user.shared', 'the same on every shared-N file');
  x(dir('xattr-dir'), 'trusted.overlay.redirect', '/not/a/real/redirect');
  x(path.join(root, 'link-short'), 'trusted.symlink', 'xattr on a symlink');
  x(path.join(root, 'link-1000'), 'security.test', 'symlink with a long target');
  x(path.join(root, 'fifo'), 'trusted.fifo', 'fifo');
  x(path.join(root, 'null'), 'security.dev', 'device');
  x(root, 'security.selinux', 'system_u:object_r:root_t:s0');
  x(root, 'user.root', 'root dir xattr');
  // Inodes whose xattrs nearly fill a block: the inline tail (symlink target, directory entries, small
  // content) must then move to a data block of its own.
  const bulky = (p: string, total: number): void => {
    for (let i = 0; total > 0; i++, total -= 1000) x(p, `trusted.bulk-${i}`, pattern(`${path.relative(root, p)}-${i}`, Math.min(1000, total) / 2).toString('hex'));
  };
  fs.symlinkSync('q'.repeat(4000), path.join(root, 'link-4000-xattrs'));
  stamp(path.join(root, 'link-4000-xattrs'));
  x(path.join(root, 'link-4000-xattrs'), 'trusted.big', 'v'.repeat(300));
  const bulkyDir = dir('bulky-dir');
  for (let i = 0; i < 60; i++) file(path.join('bulky-dir', `a-rather-long-file-name-${i}`), Buffer.from(String(i)));
  bulky(bulkyDir, 3800);
  bulky(file('bulky-inline', Buffer.from('small content next to big xattrs')), 3900);
  // 4 KiB of xattrs (what ext4 holds for one inode): the inode and its xattrs alone span more than a block.
  const object = file('bulky-object', pattern('bulky-object', 1000));
  for (const [name, size] of [['b0', 1330], ['b1', 1330], ['b2', 1330], ['b3', 60]] as const) x(object, `trusted.${name}`, name[1]!.repeat(size));
  if (options.acl === true) {
    // user::rw-, user:1000:r--, group::r--, mask::r--, other::---
    x(file('with-acl', Buffer.from('acl')), 'system.posix_acl_access', aclValue([[1, 6, 0xffffffff], [2, 4, 1000], [4, 4, 0xffffffff], [0x10, 4, 0xffffffff], [0x20, 0, 0xffffffff]]));
  }

  // Names: 255 bytes, spaces, escapes, non-UTF-8, things that sort before '.'.
  file('n'.repeat(255), Buffer.from('long name'));
  dir('d'.repeat(255));
  file(path.join('d'.repeat(255), 'e'.repeat(255)), pattern('long-long', 5000));
  file('with space', Buffer.from('s'));
  file('with\nnewline', Buffer.from('n'));
  file('back\\slash=eq', Buffer.from('b'));
  file('-', Buffer.from('-'));
  file('!first', Buffer.from('!'));
  file('ff', Buffer.from('replaces the root whiteout ff'));
  dir('00');
  const latin = Buffer.from([0x6c, 0x61, 0x74, 0x69, 0x6e, 0xe9, 0xff]);
  fs.writeFileSync(Buffer.concat([Buffer.from(root), Buffer.from('/'), latin]), 'non-UTF-8 name');
  dir('empty-dir');

  // Deep nesting and a large directory.
  let deep = 'deep';
  dir(deep);
  for (let i = 1; i < depth; i++) {
    deep = path.join(deep, `level-${i}`);
    dir(deep);
  }
  file(path.join(deep, 'bottom'), pattern('bottom', 100));
  dir('many');
  for (let i = 0; i < manyEntries; i++) {
    const name = path.join('many', `entry-${String(i).padStart(5, '0')}`);
    if (i % 500 === 0) dir(name);
    else file(name, i % 3 === 0 ? pattern(name, 100 + i) : Buffer.from(`entry ${i}\n`));
  }

  if (options.hardlinks === true) {
    dir('links');
    const target = file(path.join('links', 'first'), pattern('hardlinked', 9000));
    fs.linkSync(target, path.join(root, 'links', 'second'));
    fs.linkSync(target, path.join(root, 'deep', 'third-name'));
    const small = file(path.join('links', 'small'), Buffer.from('small hard-linked\n'));
    fs.linkSync(small, path.join(root, 'links', 'small-2'));
    fs.linkSync(path.join(root, 'fifo'), path.join(root, 'links', 'fifo-2'));
  }
  if (options.whiteouts === true) {
    dir('wh');
    mknod(path.join(root, 'wh', 'gone'), S_IFCHR | 0o000, 0);
    stamp(path.join(root, 'wh', 'gone'));
    file(path.join('wh', 'kept'), Buffer.from('kept'));
    mknod(path.join(root, 'root-whiteout'), S_IFCHR | 0o644, 0);
    stamp(path.join(root, 'root-whiteout'));
  }

  // Times last (creating entries changes a directory's mtime), deepest first, root at the end.
  times.sort((a, b) => b[0].length - a[0].length);
  for (const [p, sec, nsec] of times) setTimes(p, sec, nsec);
  setTimes(Buffer.concat([Buffer.from(root), Buffer.from('/'), latin]), BASE_TIME + 5n, 5);
  if (before1970 !== undefined) setTimes(before1970, -31_536_000n, 250_000_000);
  setTimes(root, BASE_TIME + 1n, 999_999_999);
}
