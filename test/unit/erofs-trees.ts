// In-memory source trees for the composefs image unit tests (no file system, no root).
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, S_IFSOCK } from '../../src/erofs/format.ts';
import { INLINE_MAX, objectPath, type TreeNode } from '../../src/erofs/tree.ts';
import { fsVerityDigest } from '../../src/verity/merkle.ts';
import type { HashAlgorithm } from '../../src/verity/digest.ts';

const T = 1_700_000_000n;

export function dir(entries: Record<string, TreeNode> = {}, extra: Partial<TreeNode> = {}): TreeNode {
  return { mode: S_IFDIR | 0o755, uid: 0, gid: 0, mtimeSec: T, mtimeNsec: 0, size: 0n, rdev: 0, xattrs: [], children: new Map(Object.entries(entries)), ...extra };
}

export function file(content: Buffer | string, extra: Partial<TreeNode> = {}, algorithm: HashAlgorithm = 'sha256'): TreeNode {
  const bytes = typeof content === 'string' ? Buffer.from(content) : content;
  const node: TreeNode = { mode: S_IFREG | 0o644, uid: 0, gid: 0, mtimeSec: T, mtimeNsec: 0, size: BigInt(bytes.length), rdev: 0, xattrs: [], ...extra };
  if (bytes.length > INLINE_MAX) {
    node.digest = fsVerityDigest(bytes, { algorithm });
    node.payload = objectPath(node.digest);
  } else if (bytes.length > 0) {
    node.inline = bytes;
  }
  return node;
}

export function symlink(target: string, extra: Partial<TreeNode> = {}): TreeNode {
  return { mode: S_IFLNK | 0o777, uid: 0, gid: 0, mtimeSec: T, mtimeNsec: 0, size: BigInt(target.length), rdev: 0, xattrs: [], target: Buffer.from(target), ...extra };
}

export function special(type: 'chr' | 'blk' | 'fifo' | 'sock', rdev = 0, extra: Partial<TreeNode> = {}): TreeNode {
  const bits = { chr: S_IFCHR, blk: S_IFBLK, fifo: S_IFIFO, sock: S_IFSOCK }[type];
  return { mode: bits | 0o644, uid: 0, gid: 0, mtimeSec: T, mtimeNsec: 0, size: 0n, rdev, xattrs: [], ...extra };
}

export const xattr = (name: string, value: string | Buffer) => ({ name, value: typeof value === 'string' ? Buffer.from(value) : value });

/** A tree with a bit of everything the writer handles. */
export function sampleTree(algorithm: HashAlgorithm = 'sha256'): TreeNode {
  const shared = xattr('user.shared', 'same everywhere');
  const linked = file('x'.repeat(5000), { nlink: undefined, xattrs: [xattr('user.linked', 'yes')] }, algorithm);
  const many: Record<string, TreeNode> = {};
  for (let i = 0; i < 600; i++) many[`entry-${String(i).padStart(4, '0')}`] = file(`entry ${i}\n`, { xattrs: i % 50 === 0 ? [shared] : [] });
  let deep = dir({ bottom: file('bottom') });
  for (let i = 0; i < 20; i++) deep = dir({ [`level-${20 - i}`]: deep });
  return dir({
    empty: file(''),
    one: file('1'),
    inline64: file('y'.repeat(64)),
    object65: file('z'.repeat(65), { mtimeSec: T + 5n, mtimeNsec: 123_456_789 }, algorithm),
    big: file(Buffer.alloc(3 * 4096 + 17, 7), { uid: 70_000, gid: 80_000 }, algorithm),
    setuid: file('#!/bin/sh\n', { mode: S_IFREG | 0o4755 }),
    link: symlink('object65', { xattrs: [xattr('trusted.sym', 'link')] }),
    longlink: symlink('t'.repeat(3000)),
    null: special('chr', (1 << 8) | 3),
    loop: special('blk', 7 << 8),
    fifo: special('fifo'),
    sock: special('sock'),
    xattrs: file('with xattrs', {
      xattrs: [
        xattr('user.a', 'A'), xattr('trusted.overlay.custom', 'escaped'), xattr('security.selinux', 'label'), shared,
        xattr('user.empty', ''), xattr('user.bin', Buffer.from([0, 255, 61, 10])), xattr('system.posix_acl_access', Buffer.from('020000000100060000000000', 'hex')),
      ],
    }),
    ['n'.repeat(255)]: file('long name'),
    many: dir(many, { mode: S_IFDIR | 0o1777 }),
    deep,
    links: dir({ first: linked, second: linked }),
    other: dir({ third: linked }, { xattrs: [shared] }),
  }, { xattrs: [xattr('user.root', 'r'), shared] });
}
