// The agent's check of an image before the kernel parses it: the whole inode and directory graph is walked
// through the strict reader, so any malformed structure, out-of-range offset or unknown feature is refused
// with one error naming the offset.
import { StepError } from '../errors.ts';
import {
  fileTypeOfMode, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, XATTR_INDEX_POSIX_ACL_ACCESS, XATTR_INDEX_POSIX_ACL_DEFAULT, XATTR_INDEX_TRUSTED,
} from './format.ts';
import { checkEntryType, type DirEntry, ErofsReader, ImageError, type ParsedInode, printable } from './reader.ts';

export interface ValidateOptions {
  /**
   * Refuse a regular file redirected to an object without an fs-verity digest (default true). Only a mount with
   * overlayfs verity=off (`sealroot mount --verity=off`) can read such a file; with verity=require every read of
   * it fails with EIO ("metacopy file has no digest specified", fs/overlayfs/util.c ovl_validate_verity).
   */
  requireDigests?: boolean;
}

/**
 * A composefs image whose external files carry no fs-verity digest: ostree writes one when the tree says
 * `composefs.enabled = yes` and the objects had no fs-verity at deploy time. Refused before any mount, with the fix.
 */
export class DigestlessImageError extends Error {
  readonly offset: number;
  constructor(offset: number, file: string, nid: number) {
    super(`${file} (inode ${nid}, offset ${offset}) is redirected to an object but the image records no fs-verity digest for it, `
      + 'so overlayfs (verity=require) would fail every read of it with EIO: make the image with digests '
      + '(ostree: `composefs.enabled = verity` in prepare-root.conf, or fs-verity enabled on the objects before deploying)');
    this.name = 'DigestlessImageError';
    this.offset = offset;
  }
}

/** "overlay.metacopy", the suffix of trusted.overlay.metacopy under the trusted. prefix index. */
const METACOPY_SUFFIX = Buffer.from('overlay.metacopy', 'latin1');
/** struct ovl_metacopy (fs/overlayfs/overlayfs.h): version, len, flags, digest_algo, then the digest. */
const METACOPY_HEADER = 4;
/** fs-verity algorithm number -> digest length (include/uapi/linux/fsverity.h: 1 SHA-256, 2 SHA-512). */
const VERITY_DIGEST_LENGTH: readonly number[] = [0, 32, 64];

export interface ImageSummary {
  hasAcls: boolean;
  isComposefs: boolean;
  /** Distinct inodes reachable from the root. */
  inodes: number;
  blockSize: number;
}

const ACL_XATTRS = new Set(['system.posix_acl_access', 'system.posix_acl_default']);
const ACL_NAME_MIN = Math.min(...[...ACL_XATTRS].map((name) => name.length));
const ACL_NAME_MAX = Math.max(...[...ACL_XATTRS].map((name) => name.length));

/**
 * Each 32-byte inode slot and each data block may belong to one inode only, as in every image a writer makes.
 * Besides refusing overlapping structures, this bounds the walk's work by the image size: a hostile image
 * cannot make thousands of directories share one large block of entries.
 */
class Claims {
  readonly #slots: Uint8Array;
  readonly #blocks: Uint8Array;

  constructor(size: number) {
    this.#slots = new Uint8Array(Math.ceil(size / 32 / 8));
    this.#blocks = new Uint8Array(Math.ceil(size / 4096 / 8));
  }

  inode(node: ParsedInode): void {
    const first = Math.floor(node.offset / 32);
    const last = Math.floor((node.offset + node.extent - 1) / 32);
    const slot = Claims.#claim(this.#slots, first, last);
    if (slot >= 0) throw new ImageError(slot * 32, `inode ${node.nid} overlaps another inode`);
    if (node.blockCount > 0) {
      const block = Claims.#claim(this.#blocks, node.firstBlock, node.firstBlock + node.blockCount - 1);
      if (block >= 0) throw new ImageError(node.offset + 16, `inode ${node.nid}: data block ${block} belongs to another inode too`);
    }
  }

  /**
   * Claims bits first..last (inclusive): the partial first and last bytes with a mask, the bytes between whole
   * (an inode with a 4 KiB inline tail spans 128 slots). Returns the lowest index in the range that was already
   * claimed, or -1.
   */
  static #claim(bits: Uint8Array, first: number, last: number): number {
    const firstByte = first >> 3;
    const lastByte = last >> 3;
    const firstMask = (0xff << (first & 7)) & 0xff;
    const lastMask = 0xff >> (7 - (last & 7));
    if (firstByte === lastByte) {
      const held = bits[firstByte]! & firstMask & lastMask;
      if (held !== 0) return firstByte * 8 + lowestBit(held);
      bits[firstByte] = bits[firstByte]! | (firstMask & lastMask);
      return -1;
    }
    const heldFirst = bits[firstByte]! & firstMask;
    if (heldFirst !== 0) return firstByte * 8 + lowestBit(heldFirst);
    for (let byte = firstByte + 1; byte < lastByte; byte++) {
      if (bits[byte] !== 0) return byte * 8 + lowestBit(bits[byte]!);
    }
    const heldLast = bits[lastByte]! & lastMask;
    if (heldLast !== 0) return lastByte * 8 + lowestBit(heldLast);
    bits[firstByte] = bits[firstByte]! | firstMask;
    bits.fill(0xff, firstByte + 1, lastByte);
    bits[lastByte] = bits[lastByte]! | lastMask;
    return -1;
  }
}

/** The index of the lowest set bit of a non-zero byte. */
function lowestBit(byte: number): number {
  return 31 - Math.clz32(byte & -byte);
}

function hasAclXattr(node: ParsedInode): boolean {
  const xattrs = node.xattrs;
  for (let i = 0; i < xattrs.length; i++) {
    const { index, nameLength } = xattrs[i]!;
    // The ACL indexes stand for the whole names (an empty suffix); index 0 may spell them out. Any other
    // index's prefix is not "system.", and the name is made (and hashed) only for a plausible index-0 one.
    if (index === XATTR_INDEX_POSIX_ACL_ACCESS || index === XATTR_INDEX_POSIX_ACL_DEFAULT) {
      if (nameLength === 0) return true;
    } else if (index === 0 && nameLength >= ACL_NAME_MIN && nameLength <= ACL_NAME_MAX && ACL_XATTRS.has(xattrs[i]!.name)) {
      return true;
    }
  }
  return false;
}

export interface WalkResult {
  reader: ErofsReader;
  inodes: number;
  hasAclXattrs: boolean;
}

/**
 * Walks every directory from the root (breadth-first, no recursion): each directory must hold `.` (itself) and
 * `..` (its parent), be reached by exactly one name, and every entry's type must match its inode.
 * Throws ImageError.
 */
export function walkImage(reader: ErofsReader, options: ValidateOptions = {}): WalkResult {
  const walk = new ImageWalk(reader, options.requireDigests ?? true);
  walk.run();
  return { reader, inodes: walk.inodes, hasAclXattrs: walk.hasAclXattrs };
}

class ImageWalk {
  readonly #reader: ErofsReader;
  /**
   * The file type (S_IFMT >> 12, never 0 for a valid inode) of every inode already checked, by nid: the reader
   * refuses any nid whose slot is not inside the image, so nid < size / 32.
   */
  readonly #types: Uint8Array;
  readonly #claims: Claims;
  /** Directories still to read, and the nid of each one's parent. */
  readonly #queue: ParsedInode[] = [];
  readonly #parents: number[] = [];
  readonly #requireDigests: boolean;
  inodes = 0;
  hasAclXattrs = false;

  constructor(reader: ErofsReader, requireDigests: boolean) {
    this.#reader = reader;
    this.#requireDigests = requireDigests;
    this.#types = new Uint8Array(Math.ceil(reader.info.size / 32));
    this.#claims = new Claims(reader.info.size);
  }

  run(): void {
    const root = this.#reader.inode(this.#reader.rootNid);
    if ((root.mode & S_IFMT) !== S_IFDIR) throw new ImageError(root.offset + 4, 'the root inode is not a directory');
    this.#checked(root);
    this.#queue.push(root);
    this.#parents.push(root.nid);
    // One call per directory (and per entry below): V8 optimizes a function after a few hundred calls, where a
    // loop body waits for on-stack replacement, thrown away again at each loop's end (at boot, with a cold JIT).
    for (let i = 0; i < this.#queue.length; i++) this.#directory(this.#queue[i]!, this.#parents[i]!);
  }

  #checked(node: ParsedInode): void {
    this.#types[node.nid] = (node.mode & S_IFMT) >> 12;
    this.inodes++;
    this.#claims.inode(node);
    if (!this.hasAclXattrs && node.xattrCount !== 0 && hasAclXattr(node)) this.hasAclXattrs = true;
    // The kernel would cut a target at its first NUL (fs/erofs/inode.c erofs_fill_symlink copies i_size bytes).
    if ((node.mode & S_IFMT) === S_IFLNK) this.#reader.symlinkTarget(node);
  }

  #directory(dir: ParsedInode, parent: number): void {
    const entries = this.#reader.readDir(dir);
    let dots = 0;
    // One call per entry, for the reason given in run().
    for (let e = 0; e < entries.length; e++) dots |= this.#entry(dir, parent, entries[e]!);
    if (dots !== 3) throw new ImageError(dir.offset, `directory ${dir.nid}: no '${(dots & 1) !== 0 ? '..' : '.'}' entry`);
  }

  /** Checks one entry of `dir`; returns 1 for '.', 2 for '..', 0 for any other name. */
  #entry(dir: ParsedInode, parent: number, entry: DirEntry): number {
    if (entry.dots !== 0) {
      const expected = entry.dots === 1 ? dir.nid : parent;
      if (entry.nid !== expected) throw new ImageError(dir.offset, `directory ${dir.nid}: '${entry.name}' points to nid ${entry.nid}, not ${expected}`);
      return entry.dots;
    }
    // A further name of an inode already checked: only its type is compared (parsing it again for each of
    // thousands of names would let a hostile image multiply the work).
    const seenType = this.#types[entry.nid]! << 12;
    if (seenType !== 0) {
      if (seenType === S_IFDIR) {
        throw new ImageError(dir.offset, `directory ${dir.nid}: entry ${printable(entry.name)} reaches directory ${entry.nid} a second time (loop or hard-linked directory)`);
      }
      if (fileTypeOfMode(seenType) !== entry.fileType) {
        throw new ImageError(dir.offset, `entry ${printable(entry.name)} has file type ${entry.fileType} but inode ${entry.nid} is of type ${fileTypeOfMode(seenType)}`);
      }
      return 0;
    }
    const target = this.#reader.inode(entry.nid);
    checkEntryType(entry, target, dir.offset);
    this.#checked(target);
    if (target.xattrCount !== 0 && this.#requireDigests && (target.mode & S_IFMT) === S_IFREG) this.#metacopy(target, entry);
    if ((target.mode & S_IFMT) === S_IFDIR) {
      this.#queue.push(target);
      this.#parents.push(dir.nid);
    }
    return 0;
  }

  /**
   * A regular file with trusted.overlay.metacopy must carry a whole struct ovl_metacopy with a digest of the
   * length its algorithm gives; the kernel reads an empty value (libcomposefs' and ostree's "no digest") or a
   * 4-byte header as "no digest specified" and fails the read under verity=require, and anything else as EIO too.
   */
  #metacopy(node: ParsedInode, entry: DirEntry): void {
    const xattrs = node.xattrs;
    for (let i = 0; i < xattrs.length; i++) {
      const xattr = xattrs[i]!;
      // Every external file has two trusted. xattrs of this name length (metacopy and redirect): compared in place,
      // from the end ('y' / 't'), without a copy per file.
      if (xattr.index !== XATTR_INDEX_TRUSTED || !xattr.suffixIs(METACOPY_SUFFIX)) continue;
      const size = xattr.valueSize;
      if (size === 0 || (size === METACOPY_HEADER && xattr.valueByte(0) === 0 && xattr.valueByte(1) === size && xattr.valueByte(3) === 0)) {
        throw new DigestlessImageError(node.offset, printable(entry.name), node.nid);
      }
      const algorithm = size >= METACOPY_HEADER ? xattr.valueByte(3) : 0;
      const digestLength = VERITY_DIGEST_LENGTH[algorithm] ?? -1;
      if (size < METACOPY_HEADER || xattr.valueByte(0) !== 0 || xattr.valueByte(1) !== size || digestLength <= 0 || size !== METACOPY_HEADER + digestLength) {
        throw new ImageError(xattr.valueStart, `inode ${node.nid}: trusted.overlay.metacopy of ${size} bytes is not a struct ovl_metacopy with a digest`);
      }
    }
  }
}

/**
 * Checks every structure of the whole image. Throws StepError('validate-image', '<what> at offset N'), or
 * StepError('validate-image', <the file, and how to make the image with digests>) for a digest-less image.
 */
export function validateImage(image: Uint8Array, options: ValidateOptions = {}): ImageSummary {
  try {
    const reader = new ErofsReader(image);
    const { inodes, hasAclXattrs } = walkImage(reader, options);
    // The header flag is only a hint (composefs-rs never sets it): ACLs are there if any inode carries one,
    // and then the EROFS mount must not use noacl.
    const hasAcls = hasAclXattrs || (reader.info.headerFlags & 1) !== 0;
    return { hasAcls, isComposefs: reader.info.isComposefs, inodes, blockSize: 1 << reader.info.superblock.blockSizeBits };
  } catch (error) {
    if (error instanceof ImageError || error instanceof DigestlessImageError) throw new StepError('validate-image', error.message);
    throw error;
  }
}
