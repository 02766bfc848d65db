// Writes a composefs EROFS image from a TreeNode tree, laid out as libcomposefs' mkcomposefs does
// (lcfs-writer-erofs.c): the same overlay rewriting, inode order, padding and xattr sharing, so that the
// same tree gives the same bytes. Pure: no I/O.
import type { HashAlgorithm } from '../verity/digest.ts';
import {
  BLOCK_BITS, BLOCK_SIZE, CHUNK_FORMAT_BLKBITS_MASK, COMPOSEFS_FLAG_HAS_ACL, COMPOSEFS_HEADER_VERSION, COMPOSEFS_MAGIC,
  DIRENT_SIZE, encodeComposefsHeader, encodeInode, encodeSuperblock, FEATURE_COMPAT_MTIME, FEATURE_COMPAT_XATTR_FILTER,
  fileTypeOfMode, INODE_COMPACT_SIZE, INODE_EXTENDED_SIZE, LAYOUT_CHUNK_BASED, LAYOUT_FLAT_INLINE, LAYOUT_FLAT_PLAIN,
  NULL_ADDR, roundUp, S_IFBLK, S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, SLOT_SIZE, SUPERBLOCK_OFFSET,
  SUPERBLOCK_SIZE, XATTR_ENTRY_SIZE, XATTR_IBODY_HEADER_SIZE, XATTR_LONG_PREFIX, xattrNameFilter, xattrPrefixOf,
} from './format.ts';
import { compareNames, isWhiteout, setXattr, sortedEntries, type TreeNode, type Xattr } from './tree.ts';

// Overlayfs xattrs (fs/overlayfs/overlayfs.h), and the escaped forms libcomposefs stores.
const OVERLAY_PREFIX = 'trusted.overlay.';
const OVERLAY_ESCAPE_PREFIX = 'trusted.overlay.overlay.';
const XATTR_METACOPY = 'trusted.overlay.metacopy';
const XATTR_REDIRECT = 'trusted.overlay.redirect';
const XATTR_OPAQUE = 'trusted.overlay.opaque';
const XATTR_ESCAPED_WHITEOUT = 'trusted.overlay.overlay.whiteout';
const XATTR_ESCAPED_WHITEOUTS = 'trusted.overlay.overlay.whiteouts';
const XATTR_ESCAPED_OPAQUE = 'trusted.overlay.overlay.opaque';
const XATTR_USER_WHITEOUT = 'user.overlay.whiteout';
const XATTR_USER_WHITEOUTS = 'user.overlay.whiteouts';
const XATTR_USER_OPAQUE = 'user.overlay.opaque';
const ACL_XATTRS = ['system.posix_acl_access', 'system.posix_acl_default'];

/** fs-verity hash algorithm numbers (include/uapi/linux/fsverity.h) as stored in the metacopy xattr. */
const FSVERITY_ALG: Readonly<Record<HashAlgorithm, number>> = { sha256: 1, sha512: 2 };

export interface WriteImageOptions {
  /** The algorithm of the digests in the tree (libcomposefs only knows sha256). */
  algorithm: HashAlgorithm;
  /** Lowest composefs format version; raised to `maxVersion` (default 1) when the tree has whiteouts. */
  minVersion?: number;
  maxVersion?: number;
}

/** A tree node with the writer's layout: the inode fields come from the TreeNode as they are. */
interface WNode extends Pick<TreeNode, 'mode' | 'uid' | 'gid' | 'mtimeSec' | 'mtimeNsec' | 'size' | 'rdev' | 'xattrs'> {
  nlink: number;
  /** Sorted; `link` marks a further name of an inode first met elsewhere (a hard link, `.`, `..`). */
  entries: Entry[] | undefined;
  target: Buffer | undefined;
  inline: Buffer | undefined;
  digest: Buffer | undefined;
  payload: string | undefined;
  parent: WNode | undefined;
  // Layout, computed below.
  index: number;
  nid: number;
  compact: boolean;
  blocks: number;
  tailSize: number;
  ipad: number;
  xattrSize: number;
  /** Per xattr (in `xattrs` order): its byte offset in the shared area, or -1 when stored in the inode. */
  sharedOffsets: number[];
}

interface Entry {
  name: string;
  node: WNode;
  link: boolean;
}

const type = (node: { mode: number }): number => node.mode & S_IFMT;

function treeHasWhiteouts(node: TreeNode, seen: Set<TreeNode>): boolean {
  if (seen.has(node)) return false;
  seen.add(node);
  if (isWhiteout(node)) return true;
  for (const child of node.children?.values() ?? []) if (treeHasWhiteouts(child, seen)) return true;
  return false;
}

/**
 * Copies the tree into writer nodes, depth-first in name order; a TreeNode under several names (hard links) maps
 * to one WNode, whose inode is placed at its primary name (a dump's line without '@', as libcomposefs does) or
 * else at its first name in this order. A file's nlink is its number of names, unless the tree gives one (dump
 * files); directories are fixed up in orderTree.
 */
function cloneTree(root: TreeNode): WNode {
  const clones = new Map<TreeNode, WNode>();
  const clone = (node: TreeNode, parent: WNode | undefined, path: string): WNode => {
    let copy: WNode;
    try {
      copy = newWNode(node, parent);
    } catch (error) {
      if (error instanceof TreeError) throw new TreeError(`${show(path || '/')}: ${error.message}`);
      throw error;
    }
    clones.set(node, copy);
    if (node.children !== undefined) {
      copy.entries = sortedEntries(node).map(([name, child]) => {
        checkName(name, path);
        const existing = clones.get(child);
        // With a declared primary name, every other name is the link, whichever comes first.
        const isPrimary = child.primary === undefined ? existing === undefined : child.primary.parent === node && child.primary.name === name;
        if (existing === undefined) return { name, node: clone(child, copy, `${path}/${name}`), link: !isPrimary };
        if ((existing.mode & S_IFMT) === S_IFDIR) throw new TreeError(`${show(`${path}/${name}`)}: a directory cannot have two names (hard-linked directory)`);
        if (child.nlink === undefined) existing.nlink += 1;
        return { name, node: existing, link: !isPrimary };
      });
    }
    return copy;
  };
  const top = clone(root, undefined, '');
  // Each inode needs exactly one name that is not a link: that is where it is written.
  const placed = new Map<WNode, number>();
  for (const node of clones.values()) {
    for (const entry of node.entries ?? []) if (!entry.link) placed.set(entry.node, (placed.get(entry.node) ?? 0) + 1);
  }
  for (const [tree, node] of clones) {
    if (node !== top && placed.get(node) !== 1) throw new TreeError(`a node has ${placed.get(node) ?? 0} primary names (its 'primary' must name one of its entries)${tree.primary ? `: ${show(tree.primary.name)}` : ''}`);
  }
  return top;
}

/** What libcomposefs refuses too (lcfs_node_add_child, lcfs_node_set_xattr, lcfs_node_set_symlink_payload). */
export class TreeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TreeError';
  }
}

const show = (name: string): string => JSON.stringify(Buffer.from(name, 'latin1').toString('utf8'));

function checkName(name: string, dir: string): void {
  if (name.length === 0 || name.length > 255 || name.includes('/') || name.includes('\0') || name === '.' || name === '..') {
    throw new TreeError(`${show(dir || '/')}: invalid file name ${show(name)} (1 to 255 bytes, no '/' or NUL, not . or ..)`);
  }
}

function checkNode(node: TreeNode): void {
  let total = 0;
  for (const xattr of node.xattrs) {
    if (xattr.name.length === 0 || xattr.name.length > 255) throw new TreeError(`invalid xattr name ${show(xattr.name)}`);
    if (xattr.value.length > 0xffff) throw new TreeError(`xattr ${show(xattr.name)} has a ${xattr.value.length}-byte value (EROFS stores at most 65535)`);
    total += XATTR_ENTRY_SIZE + xattr.name.length + xattr.value.length + 3;
  }
  // i_xattr_icount is 16 bits: (ibody - 12) / 4 + 1 <= 65535; libcomposefs caps the total at 65535 bytes.
  if (total > 0xffff) throw new TreeError(`xattrs of ${total} bytes on one inode (at most 65535)`);
  if ((node.mode & S_IFMT) === S_IFLNK && (node.target === undefined || node.target.length === 0 || node.target.length > 4095 || node.target.includes(0))) {
    throw new TreeError('a symlink target must be 1 to 4095 bytes without NUL');
  }
  if ((node.mode & S_IFMT) === S_IFREG && node.inline !== undefined && BigInt(node.inline.length) !== node.size) {
    throw new TreeError(`inline content of ${node.inline.length} bytes for a file of ${node.size}`);
  }
}

function newWNode(node: TreeNode, parent: WNode | undefined): WNode {
  checkNode(node);
  return {
    mode: node.mode, uid: node.uid, gid: node.gid, mtimeSec: node.mtimeSec, mtimeNsec: node.mtimeNsec,
    size: node.size, rdev: node.rdev, nlink: node.nlink ?? 1,
    xattrs: node.xattrs.map((xattr) => ({ name: xattr.name, value: xattr.value })),
    entries: undefined, target: node.target, inline: node.inline, digest: node.digest, payload: node.payload, parent,
    index: 0, nid: 0, compact: false, blocks: 0, tailSize: 0, ipad: 0, xattrSize: 0, sharedOffsets: [],
  };
}

function addOverlayXattrs(node: WNode, version: number, algorithm: HashAlgorithm): void {
  // Escape the source's own overlay xattrs so overlayfs does not interpret them.
  for (const xattr of node.xattrs) {
    if (xattr.name.startsWith(OVERLAY_PREFIX)) xattr.name = OVERLAY_ESCAPE_PREFIX + xattr.name.slice(OVERLAY_PREFIX.length);
  }
  if (type(node) === S_IFREG && node.size > 0n && node.inline === undefined) {
    let metacopy = Buffer.alloc(0);
    if (node.digest !== undefined) {
      // struct ovl_metacopy: version 0, len, flags 0, digest_algo, digest (fs/overlayfs/overlayfs.h).
      metacopy = Buffer.concat([Buffer.from([0, 4 + node.digest.length, 0, FSVERITY_ALG[algorithm]]), node.digest]);
    }
    setXattr(node, XATTR_METACOPY, metacopy);
    if (node.payload !== undefined && node.payload.length > 0) {
      setXattr(node, XATTR_REDIRECT, Buffer.from(`/${node.payload}`, 'latin1'));
    }
  }
  if (type(node) === S_IFCHR && node.rdev === 0) {
    // A whiteout in the source becomes an escaped whiteout: a regular file overlayfs shows as a whiteout
    // only to an overlay stacked on this one (fs/overlayfs/util.c ovl_is_whiteout, "xwhiteout").
    const parent = node.parent ?? node;
    node.size = 0n;
    node.mode = S_IFREG | (node.mode & ~S_IFMT);
    setXattr(node, XATTR_ESCAPED_WHITEOUT, Buffer.alloc(0));
    setXattr(node, XATTR_USER_WHITEOUT, Buffer.alloc(0));
    setXattr(parent, XATTR_ESCAPED_WHITEOUTS, Buffer.alloc(0));
    setXattr(parent, XATTR_USER_WHITEOUTS, Buffer.alloc(0));
    if (version >= 1) {
      setXattr(parent, XATTR_ESCAPED_OPAQUE, Buffer.from('x'));
      setXattr(parent, XATTR_USER_OPAQUE, Buffer.from('x'));
    }
  }
}

function insertSorted(entries: Entry[], name: string, node: WNode, link: boolean): void {
  if (entries.some((entry) => entry.name === name)) return;
  let at = entries.findIndex((entry) => compareNames(name, entry.name) < 0);
  if (at < 0) at = entries.length;
  entries.splice(at, 0, { name, node, link });
}

/** lcfs rewrite_tree_for_erofs: overlay xattrs, `.` and `..`, root opaque and the 256 root whiteouts. */
function rewriteTree(root: WNode, version: number, algorithm: HashAlgorithm): void {
  const done = new Set<WNode>();
  const visit = (node: WNode, parent: WNode): void => {
    done.add(node);
    addOverlayXattrs(node, version, algorithm);
    if (node.entries === undefined) return;
    const children = node.entries.filter((entry) => !entry.link);
    insertSorted(node.entries, '.', node, true);
    insertSorted(node.entries, '..', parent, true);
    for (const { node: child } of children) if (!done.has(child)) visit(child, node);
  };
  visit(root, root);
  setXattr(root, XATTR_OPAQUE, Buffer.from('y'));
  // Whiteouts for 00..ff at the root, so that no name there reaches a lower layer's object directory.
  const selinux = root.xattrs.find((xattr) => xattr.name === 'security.selinux')?.value;
  for (let i = 0; i < 256; i++) {
    const name = i.toString(16).padStart(2, '0');
    if (root.entries!.some((entry) => entry.name === name)) continue;
    const whiteout = newWNode({
      mode: S_IFCHR | 0o644, uid: root.uid, gid: root.gid, mtimeSec: root.mtimeSec, mtimeNsec: root.mtimeNsec,
      size: 0n, rdev: 0, xattrs: selinux === undefined ? [] : [{ name: 'security.selinux', value: selinux }],
    }, root);
    insertSorted(root.entries!, name, whiteout, false);
  }
}

interface Ordered {
  nodes: WNode[];
  minMtimeSec: bigint;
  minMtimeNsec: number;
  hasAcl: boolean;
}

/** lcfs_compute_tree: breadth-first order over sorted children, links skipped: each inode once. */
function orderTree(root: WNode): Ordered {
  const nodes: WNode[] = [root];
  let minMtimeSec = root.mtimeSec;
  let minMtimeNsec = root.mtimeNsec;
  let hasAcl = false;
  for (let i = 0; i < nodes.length; i++) {
    const node = nodes[i]!;
    if (node.entries !== undefined) {
      node.nlink = 2 + node.entries.filter((entry) => !entry.link && type(entry.node) === S_IFDIR).length;
    }
    node.xattrs.sort((a, b) => compareNames(a.name, b.name));
    if (node.mtimeSec < minMtimeSec || (node.mtimeSec === minMtimeSec && node.mtimeNsec < minMtimeNsec)) {
      minMtimeSec = node.mtimeSec;
      minMtimeNsec = node.mtimeNsec;
    }
    node.index = i;
    if (node.xattrs.some((xattr) => ACL_XATTRS.includes(xattr.name))) hasAcl = true;
    for (const entry of node.entries ?? []) if (!entry.link) nodes.push(entry.node);
  }
  return { nodes, minMtimeSec, minMtimeNsec, hasAcl };
}

const xattrKey = (xattr: Xattr): string => `${xattr.name}\0${xattr.value.toString('latin1')}`;

function xattrEntrySize(xattr: Xattr): number {
  const { prefixLength } = xattrPrefixOf(xattr.name);
  return roundUp(XATTR_ENTRY_SIZE + xattr.name.length - prefixLength + xattr.value.length, 4);
}

function encodeXattrEntry(xattr: Xattr): Buffer {
  const { index, prefixLength } = xattrPrefixOf(xattr.name);
  const suffixLength = xattr.name.length - prefixLength;
  const buf = Buffer.alloc(roundUp(XATTR_ENTRY_SIZE + suffixLength + xattr.value.length, 4));
  buf[0] = suffixLength;
  buf[1] = index;
  buf.writeUInt16LE(xattr.value.length, 2);
  buf.write(xattr.name.slice(prefixLength), XATTR_ENTRY_SIZE, 'latin1');
  xattr.value.copy(buf, XATTR_ENTRY_SIZE + suffixLength);
  return buf;
}

/** compute_erofs_shared_xattrs: an xattr (name and value) used by more than one inode is stored once. */
function shareXattrs(nodes: WNode[]): Xattr[] {
  const counts = new Map<string, { xattr: Xattr; count: number; offset: number }>();
  for (const node of nodes) {
    for (const xattr of node.xattrs) {
      const key = xattrKey(xattr);
      const entry = counts.get(key);
      if (entry === undefined) counts.set(key, { xattr, count: 1, offset: -1 });
      else entry.count += 1;
    }
  }
  // Canonical order: name descending, then value length descending, then value bytes descending. Only the
  // shared ones need an order (libcomposefs sorts all of them; the result is the same).
  const sorted = [...counts.values()].filter((entry) => entry.count > 1).sort((a, b) => {
    const byName = compareNames(b.xattr.name, a.xattr.name);
    if (byName !== 0) return byName;
    if (a.xattr.value.length !== b.xattr.value.length) return b.xattr.value.length - a.xattr.value.length;
    return Buffer.compare(b.xattr.value, a.xattr.value);
  });
  const shared: Xattr[] = [];
  let offset = 0;
  for (const entry of sorted) {
    entry.offset = offset;
    shared.push(entry.xattr);
    offset += xattrEntrySize(entry.xattr);
  }
  for (const node of nodes) {
    let sharedCount = 0;
    node.sharedOffsets = node.xattrs.map((xattr) => {
      const entry = counts.get(xattrKey(xattr))!;
      // h_shared_count is a u8 and the kernel treats >= 0x80 ids... libcomposefs caps at EROFS_XATTR_LONG_PREFIX.
      if (entry.offset >= 0 && sharedCount < XATTR_LONG_PREFIX) {
        sharedCount += 1;
        return entry.offset;
      }
      return -1;
    });
  }
  return shared;
}

function dirEntrySize(name: string): number {
  return DIRENT_SIZE + name.length;
}

/** Splits a directory's entries into blocks: full blocks, then the rest (the tail). */
function dirBlocks(node: WNode): Entry[][] {
  const chunks: Entry[][] = [[]];
  let used = 0;
  for (const entry of node.entries!) {
    const size = dirEntrySize(entry.name);
    if (used + size > BLOCK_SIZE) {
      chunks.push([]);
      used = 0;
    }
    chunks[chunks.length - 1]!.push(entry);
    used += size;
  }
  return chunks;
}

function chunkBits(size: bigint): number {
  // The smallest power of two >= size, at least one block, at most 2^(12+31) (ilog2(size - 1) + 1).
  let bits = size <= 1n ? 0 : (size - 1n).toString(2).length;
  if (bits < BLOCK_BITS) bits = BLOCK_BITS;
  if (bits - BLOCK_BITS > CHUNK_FORMAT_BLKBITS_MASK) bits = CHUNK_FORMAT_BLKBITS_MASK + BLOCK_BITS;
  return bits;
}

function chunkCount(size: bigint): number {
  const chunk = 1n << BigInt(chunkBits(size));
  return Number((size + chunk - 1n) / chunk);
}

const isChunked = (node: WNode): boolean => type(node) === S_IFREG && node.size > 0n && node.inline === undefined;

function computeDataSize(node: WNode): void {
  node.blocks = 0;
  node.tailSize = 0;
  if (type(node) === S_IFDIR) {
    const chunks = dirBlocks(node);
    const last = chunks[chunks.length - 1]!.reduce((sum, entry) => sum + dirEntrySize(entry.name), 0);
    node.blocks = chunks.length - 1;
    node.tailSize = last;
    // Never inline more than half a block.
    if (node.tailSize > BLOCK_SIZE / 2) {
      node.blocks += 1;
      node.tailSize = 0;
    }
  } else if (type(node) === S_IFLNK) {
    node.tailSize = node.target!.length;
  } else if (type(node) === S_IFREG && node.size > 0n) {
    if (node.inline !== undefined) {
      node.blocks = Math.floor(node.inline.length / BLOCK_SIZE);
      node.tailSize = node.inline.length % BLOCK_SIZE;
      if (node.tailSize > BLOCK_SIZE / 2) {
        node.blocks += 1;
        node.tailSize = 0;
      }
    } else {
      node.tailSize = chunkCount(node.size) * 4;
    }
  }
}

function inodeSize(node: WNode): bigint {
  if (type(node) === S_IFDIR) return BigInt(node.blocks * BLOCK_SIZE + node.tailSize);
  if (type(node) === S_IFLNK) return BigInt(node.target!.length);
  if (type(node) === S_IFREG) return node.size;
  return 0n;
}

function fitsCompact(node: WNode, order: Ordered): boolean {
  if (node.mtimeSec !== order.minMtimeSec || node.mtimeNsec !== order.minMtimeNsec) return false;
  if (node.nlink > 0xffff || node.uid > 0xffff || node.gid > 0xffff) return false;
  return inodeSize(node) <= 0xffffffffn;
}

function xattrLayout(node: WNode): { shared: number; unsharedSize: number; size: number } {
  let shared = 0;
  let unsharedSize = 0;
  node.xattrs.forEach((xattr, i) => {
    if (node.sharedOffsets[i]! >= 0) shared += 1;
    else unsharedSize += xattrEntrySize(xattr);
  });
  const size = shared === 0 && unsharedSize === 0 ? 0 : roundUp(XATTR_IBODY_HEADER_SIZE + shared * 4 + unsharedSize, 4);
  return { shared, unsharedSize, size };
}

/**
 * compute_erofs_inode_padding_for_tail: padding before the inode so that its inline tail does not cross a block;
 * a tail that cannot fit moves to a block of its own.
 */
function paddingForTail(node: WNode, pos: number, headSize: number): number {
  const total = headSize + node.tailSize;
  if (type(node) === S_IFLNK) {
    // Inode, xattrs and target in one block when they fit (fast symlink); a target that cannot share a block
    // with its inode is stored in a data block. The padding decision uses the size before that move.
    const crosses = Math.floor(pos / BLOCK_SIZE) !== Math.floor((pos + total - 1) / BLOCK_SIZE);
    if (total >= BLOCK_SIZE) {
      node.blocks += 1;
      node.tailSize = 0;
    }
    return crosses ? roundUp(pos, BLOCK_SIZE) - pos : 0;
  }
  let remainder = BLOCK_SIZE - ((pos + headSize) % BLOCK_SIZE);
  if (remainder < node.tailSize) {
    const extra = roundUp(remainder, SLOT_SIZE);
    remainder = BLOCK_SIZE - ((pos + headSize + extra) % BLOCK_SIZE);
    // After that padding the tail starts at most 31 bytes into a block, so this only fails for tails over
    // 4065 bytes (none that libcomposefs or this writer inlines); kept as libcomposefs has it.
    if (node.tailSize <= remainder) return extra;
    node.blocks += 1;
    node.tailSize = 0;
    return roundUp(pos, BLOCK_SIZE) - pos;
  }
  return 0;
}

export interface WrittenImage {
  image: Buffer;
  inodes: number;
  composefsVersion: number;
}

/** Writes the image for `root`. Throws on trees libcomposefs refuses (non-directory root, over-long names). */
export function writeImage(root: TreeNode, options: WriteImageOptions): WrittenImage {
  if ((root.mode & S_IFMT) !== S_IFDIR) throw new TreeError('the root of an image must be a directory');
  const maxVersion = Math.max(options.maxVersion ?? 1, options.minVersion ?? 0);
  if (maxVersion > 1 || (options.minVersion ?? 0) < 0) throw new TreeError('only composefs format versions 0 and 1 are written');
  let version = options.minVersion ?? 0;
  if (version < 1 && maxVersion >= 1 && treeHasWhiteouts(root, new Set())) version = 1;

  const top = cloneTree(root);
  rewriteTree(top, version, options.algorithm);
  const order = orderTree(top);
  const { nodes } = order;
  const shared = shareXattrs(nodes);
  const sharedSize = shared.reduce((sum, xattr) => sum + xattrEntrySize(xattr), 0);

  // Inode placement: right after the superblock; nids count 32-byte slots from offset 0 (meta_blkaddr 0).
  let pos = SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE;
  let dataBlocks = 0;
  for (const node of nodes) {
    computeDataSize(node);
    node.compact = fitsCompact(node, order);
    node.xattrSize = xattrLayout(node).size;
    const headSize = (node.compact ? INODE_COMPACT_SIZE : INODE_EXTENDED_SIZE) + node.xattrSize;
    const aligned = roundUp(pos, SLOT_SIZE);
    node.ipad = aligned - pos;
    pos = aligned;
    const extra = paddingForTail(node, pos, headSize);
    node.ipad += extra;
    pos += extra;
    dataBlocks += node.blocks;
    node.nid = pos / SLOT_SIZE;
    pos += headSize + node.tailSize;
  }
  if (nodes[0]!.nid > 0xffff) throw new TreeError('root inode beyond the superblock root_nid range');
  const inodesEnd = roundUp(pos, SLOT_SIZE);
  const dataStart = roundUp(inodesEnd + sharedSize, BLOCK_SIZE);
  const totalBlocks = dataStart / BLOCK_SIZE + dataBlocks;
  const image = Buffer.alloc(totalBlocks * BLOCK_SIZE);

  encodeComposefsHeader({
    magic: COMPOSEFS_MAGIC, version: COMPOSEFS_HEADER_VERSION, flags: order.hasAcl ? COMPOSEFS_FLAG_HAS_ACL : 0, composefsVersion: version,
  }).copy(image, 0);
  encodeSuperblock({
    checksum: 0, featureCompat: FEATURE_COMPAT_MTIME | FEATURE_COMPAT_XATTR_FILTER, blockSizeBits: BLOCK_BITS, extraSlots: 0,
    rootNid: nodes[0]!.nid, inodeCount: BigInt(nodes.length), buildTime: order.minMtimeSec, buildTimeNsec: order.minMtimeNsec,
    blocks: totalBlocks, metaBlockAddress: 0, xattrBlockAddress: Math.floor(inodesEnd / BLOCK_SIZE), featureIncompat: 0,
    compression: 0, extraDevices: 0, deviceSlotOffset: 0, dirBlockBits: 0, xattrPrefixCount: 0, xattrPrefixStart: 0,
    packedNid: 0n, xattrFilterReserved: 0,
  }).copy(image, SUPERBLOCK_OFFSET);

  let nextBlock = dataStart / BLOCK_SIZE;
  const blockAddress = new Map<WNode, number>();
  pos = SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE;
  for (const node of nodes) {
    pos += node.ipad;
    const layout = xattrLayout(node);
    let dataLayout = node.tailSize > 0 ? LAYOUT_FLAT_INLINE : LAYOUT_FLAT_PLAIN;
    let union = 0;
    if (type(node) === S_IFCHR || type(node) === S_IFBLK) {
      union = node.rdev >>> 0;
    } else if (node.blocks > 0) {
      union = nextBlock;
      blockAddress.set(node, nextBlock);
      nextBlock += node.blocks;
    }
    if (isChunked(node)) {
      dataLayout = LAYOUT_CHUNK_BASED;
      union = chunkBits(node.size) - BLOCK_BITS;
    }
    const inode = encodeInode({
      extended: !node.compact, layout: dataLayout, xattrCount: layout.size === 0 ? 0 : (layout.size - XATTR_IBODY_HEADER_SIZE) / 4 + 1,
      mode: node.mode & 0xffff, nlink: node.nlink, size: inodeSize(node), union, ino: node.index, uid: node.uid, gid: node.gid,
      mtime: node.mtimeSec, mtimeNsec: node.mtimeNsec,
    });
    inode.copy(image, pos);
    pos += inode.length;
    if (layout.size > 0) {
      const start = pos;
      image.writeUInt32LE(xattrNameFilter(node.xattrs.map((xattr) => Buffer.from(xattr.name, 'latin1'))), pos);
      image.writeUInt8(layout.shared, pos + 4);
      pos += XATTR_IBODY_HEADER_SIZE;
      node.xattrs.forEach((_, i) => {
        const offset = node.sharedOffsets[i]!;
        if (offset < 0) return;
        image.writeUInt32LE(((inodesEnd % BLOCK_SIZE) + offset) / 4, pos);
        pos += 4;
      });
      node.xattrs.forEach((xattr, i) => {
        if (node.sharedOffsets[i]! >= 0) return;
        pos += encodeXattrEntry(xattr).copy(image, pos);
      });
      pos = start + layout.size;
    }
    if (node.tailSize > 0) {
      if (type(node) === S_IFDIR) {
        const chunks = dirBlocks(node);
        writeDirents(image, pos, chunks[chunks.length - 1]!);
      } else if (type(node) === S_IFLNK) {
        node.target!.copy(image, pos);
      } else if (isChunked(node)) {
        for (let i = 0; i < node.tailSize; i += 4) image.writeUInt32LE(NULL_ADDR, pos + i);
      } else {
        node.inline!.copy(image, pos, node.inline!.length - node.tailSize);
      }
      pos += node.tailSize;
    }
  }
  pos = roundUp(pos, SLOT_SIZE);
  for (const xattr of shared) pos += encodeXattrEntry(xattr).copy(image, pos);

  // Data blocks: directory blocks and non-inline content, in inode order.
  for (const node of nodes) {
    const first = blockAddress.get(node);
    if (first === undefined) continue;
    if (type(node) === S_IFDIR) {
      const chunks = dirBlocks(node);
      const inBlocks = node.tailSize === 0 ? chunks : chunks.slice(0, -1);
      inBlocks.forEach((chunk, i) => writeDirents(image, (first + i) * BLOCK_SIZE, chunk));
    } else if (type(node) === S_IFLNK) {
      node.target!.copy(image, first * BLOCK_SIZE);
    } else if (node.inline !== undefined) {
      node.inline.copy(image, first * BLOCK_SIZE, 0, Math.min(node.inline.length, node.blocks * BLOCK_SIZE));
    }
  }
  return { image, inodes: nodes.length, composefsVersion: version };
}

function writeDirents(image: Buffer, at: number, entries: Entry[]): void {
  let nameOffset = entries.length * DIRENT_SIZE;
  entries.forEach((entry, i) => {
    const base = at + i * DIRENT_SIZE;
    image.writeBigUInt64LE(BigInt(entry.node.nid), base);
    image.writeUInt16LE(nameOffset, base + 8);
    image.writeUInt8(fileTypeOfMode(entry.node.mode), base + 10);
    nameOffset += Buffer.from(entry.name, 'latin1').copy(image, at + nameOffset);
  });
}
