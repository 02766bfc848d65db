// EROFS on-disk format as composefs images use it (kernel fs/erofs/erofs_fs.h; libcomposefs lcfs-erofs.h).
// All integers are little-endian. Only uncompressed layouts: flat plain, flat inline, chunk-based.

export const BLOCK_SIZE = 4096;
export const BLOCK_BITS = 12;
/** Inodes sit on 32-byte slots; a nid is (inode offset - meta_blkaddr * block size) / 32. */
export const SLOT_SIZE = 32;
export const SLOT_BITS = 5;

// --- composefs header (libcomposefs lcfs-erofs.h): 32 bytes at offset 0, before the EROFS superblock
export const COMPOSEFS_MAGIC = 0xd078629a;
/** The header's `version` field: the layout of this header itself. */
export const COMPOSEFS_HEADER_VERSION = 1;
export const COMPOSEFS_FLAG_HAS_ACL = 1;
export const COMPOSEFS_HEADER_SIZE = 32;

export interface ComposefsHeader {
  magic: number;
  version: number;
  flags: number;
  /** The composefs format version (0, or 1 when the tree has whiteouts): what libcomposefs calls options->version. */
  composefsVersion: number;
}

export function encodeComposefsHeader(header: ComposefsHeader): Buffer {
  const buf = Buffer.alloc(COMPOSEFS_HEADER_SIZE);
  buf.writeUInt32LE(header.magic, 0);
  buf.writeUInt32LE(header.version, 4);
  buf.writeUInt32LE(header.flags, 8);
  buf.writeUInt32LE(header.composefsVersion, 12);
  return buf;
}

export function decodeComposefsHeader(buf: Buffer): ComposefsHeader {
  return { magic: buf.readUInt32LE(0), version: buf.readUInt32LE(4), flags: buf.readUInt32LE(8), composefsVersion: buf.readUInt32LE(12) };
}

// --- superblock (struct erofs_super_block, 128 bytes at offset 1024)
export const SUPERBLOCK_OFFSET = 1024;
export const SUPERBLOCK_SIZE = 128;
export const EROFS_MAGIC = 0xe0f5e1e2;

export const FEATURE_COMPAT_SB_CHKSUM = 0x1;
export const FEATURE_COMPAT_MTIME = 0x2;
export const FEATURE_COMPAT_XATTR_FILTER = 0x4;
/** Chunk-based files (erofs-utils sets it for --chunksize; libcomposefs and composefs-rs write them without it). */
export const FEATURE_INCOMPAT_CHUNKED_FILE = 0x4;

export interface Superblock {
  magic: number;
  checksum: number;
  featureCompat: number;
  blockSizeBits: number;
  extraSlots: number;
  rootNid: number;
  inodeCount: bigint;
  buildTime: bigint;
  buildTimeNsec: number;
  blocks: number;
  metaBlockAddress: number;
  xattrBlockAddress: number;
  featureIncompat: number;
  /** available_compr_algs / lz4_max_distance: must be 0 without compression. */
  compression: number;
  extraDevices: number;
  deviceSlotOffset: number;
  dirBlockBits: number;
  xattrPrefixCount: number;
  xattrPrefixStart: number;
  packedNid: bigint;
  xattrFilterReserved: number;
  /** uuid, volume_name and the reserved tail are not interpreted. */
}

export function encodeSuperblock(sb: Omit<Superblock, 'magic'>): Buffer {
  const buf = Buffer.alloc(SUPERBLOCK_SIZE);
  buf.writeUInt32LE(EROFS_MAGIC, 0);
  buf.writeUInt32LE(sb.checksum, 4);
  buf.writeUInt32LE(sb.featureCompat, 8);
  buf.writeUInt8(sb.blockSizeBits, 12);
  buf.writeUInt8(sb.extraSlots, 13);
  buf.writeUInt16LE(sb.rootNid, 14);
  buf.writeBigUInt64LE(sb.inodeCount, 16);
  buf.writeBigUInt64LE(BigInt.asUintN(64, sb.buildTime), 24); // time64_t: before 1970 is negative
  buf.writeUInt32LE(sb.buildTimeNsec, 32);
  buf.writeUInt32LE(sb.blocks, 36);
  buf.writeUInt32LE(sb.metaBlockAddress, 40);
  buf.writeUInt32LE(sb.xattrBlockAddress, 44);
  buf.writeUInt32LE(sb.featureIncompat, 80);
  buf.writeUInt16LE(sb.compression, 84);
  buf.writeUInt16LE(sb.extraDevices, 86);
  buf.writeUInt16LE(sb.deviceSlotOffset, 88);
  buf.writeUInt8(sb.dirBlockBits, 90);
  buf.writeUInt8(sb.xattrPrefixCount, 91);
  buf.writeUInt32LE(sb.xattrPrefixStart, 92);
  buf.writeBigUInt64LE(sb.packedNid, 96);
  buf.writeUInt8(sb.xattrFilterReserved, 104);
  return buf;
}

export function decodeSuperblock(buf: Buffer): Superblock {
  return {
    magic: buf.readUInt32LE(0),
    checksum: buf.readUInt32LE(4),
    featureCompat: buf.readUInt32LE(8),
    blockSizeBits: buf.readUInt8(12),
    extraSlots: buf.readUInt8(13),
    rootNid: buf.readUInt16LE(14),
    inodeCount: buf.readBigUInt64LE(16),
    buildTime: buf.readBigInt64LE(24),
    buildTimeNsec: buf.readUInt32LE(32),
    blocks: buf.readUInt32LE(36),
    metaBlockAddress: buf.readUInt32LE(40),
    xattrBlockAddress: buf.readUInt32LE(44),
    featureIncompat: buf.readUInt32LE(80),
    compression: buf.readUInt16LE(84),
    extraDevices: buf.readUInt16LE(86),
    deviceSlotOffset: buf.readUInt16LE(88),
    dirBlockBits: buf.readUInt8(90),
    xattrPrefixCount: buf.readUInt8(91),
    xattrPrefixStart: buf.readUInt32LE(92),
    packedNid: buf.readBigUInt64LE(96),
    xattrFilterReserved: buf.readUInt8(104),
  };
}

// --- inodes (struct erofs_inode_compact, 32 bytes; struct erofs_inode_extended, 64 bytes)
export const INODE_COMPACT_SIZE = 32;
export const INODE_EXTENDED_SIZE = 64;

/** i_format: bit 0 = version (0 compact, 1 extended), bits 1-3 = data layout. */
export const I_VERSION_MASK = 0x1;
export const I_DATALAYOUT_BIT = 1;
export const I_DATALAYOUT_MASK = 0x7;

export const LAYOUT_FLAT_PLAIN = 0;
export const LAYOUT_COMPRESSED_FULL = 1;
export const LAYOUT_FLAT_INLINE = 2;
export const LAYOUT_COMPRESSED_COMPACT = 3;
export const LAYOUT_CHUNK_BASED = 4;

/** i_u.c.format of a chunk-based inode: low 5 bits = chunk size bits above the block size. */
export const CHUNK_FORMAT_BLKBITS_MASK = 0x1f;
export const CHUNK_FORMAT_INDEXES = 0x20;
/** A chunk with no data (reads as zeros): EROFS_NULL_ADDR. */
export const NULL_ADDR = 0xffffffff;

export interface Inode {
  extended: boolean;
  layout: number;
  xattrCount: number;
  mode: number;
  nlink: number;
  size: bigint;
  /** raw_blkaddr, rdev or the chunk format, by file type and layout. */
  union: number;
  ino: number;
  uid: number;
  gid: number;
  /** Only in extended inodes; compact ones take the superblock's build time. */
  mtime: bigint;
  mtimeNsec: number;
}

export function inodeFormat(extended: boolean, layout: number): number {
  return (layout << I_DATALAYOUT_BIT) | (extended ? 1 : 0);
}

export function encodeInode(inode: Inode): Buffer {
  const format = inodeFormat(inode.extended, inode.layout);
  if (!inode.extended) {
    const buf = Buffer.alloc(INODE_COMPACT_SIZE);
    buf.writeUInt16LE(format, 0);
    buf.writeUInt16LE(inode.xattrCount, 2);
    buf.writeUInt16LE(inode.mode, 4);
    buf.writeUInt16LE(inode.nlink, 6);
    buf.writeUInt32LE(Number(inode.size), 8);
    buf.writeUInt32LE(inode.union, 16);
    buf.writeUInt32LE(inode.ino, 20);
    buf.writeUInt16LE(inode.uid, 24);
    buf.writeUInt16LE(inode.gid, 26);
    return buf;
  }
  const buf = Buffer.alloc(INODE_EXTENDED_SIZE);
  buf.writeUInt16LE(format, 0);
  buf.writeUInt16LE(inode.xattrCount, 2);
  buf.writeUInt16LE(inode.mode, 4);
  buf.writeBigUInt64LE(inode.size, 8);
  buf.writeUInt32LE(inode.union, 16);
  buf.writeUInt32LE(inode.ino, 20);
  buf.writeUInt32LE(inode.uid, 24);
  buf.writeUInt32LE(inode.gid, 28);
  buf.writeBigUInt64LE(BigInt.asUintN(64, inode.mtime), 32);
  buf.writeUInt32LE(inode.mtimeNsec, 40);
  buf.writeUInt32LE(inode.nlink, 44);
  return buf;
}

// --- extended attributes (struct erofs_xattr_ibody_header 12 bytes + shared ids; struct erofs_xattr_entry 4 bytes)
export const XATTR_IBODY_HEADER_SIZE = 12;
export const XATTR_ENTRY_SIZE = 4;
export const XATTR_INDEX_USER = 1;
export const XATTR_INDEX_POSIX_ACL_ACCESS = 2;
export const XATTR_INDEX_POSIX_ACL_DEFAULT = 3;
export const XATTR_INDEX_TRUSTED = 4;
export const XATTR_INDEX_LUSTRE = 5;
export const XATTR_INDEX_SECURITY = 6;
/** e_name_index with this bit set refers to a long prefix table entry (not used by composefs). */
export const XATTR_LONG_PREFIX = 0x80;
export const XATTR_FILTER_BITS = 32;
export const XATTR_FILTER_DEFAULT = 0xffffffff;
export const XATTR_FILTER_SEED = 0x25bbe08f;

/** Prefixes in the order libcomposefs matches them (the ACL names are whole names, with an empty suffix). */
export const XATTR_PREFIXES: readonly { prefix: string; index: number }[] = [
  { prefix: 'user.', index: XATTR_INDEX_USER },
  { prefix: 'system.posix_acl_access', index: XATTR_INDEX_POSIX_ACL_ACCESS },
  { prefix: 'system.posix_acl_default', index: XATTR_INDEX_POSIX_ACL_DEFAULT },
  { prefix: 'trusted.', index: XATTR_INDEX_TRUSTED },
  { prefix: 'security.', index: XATTR_INDEX_SECURITY },
];

const PREFIX_BYTES = XATTR_PREFIXES.map(({ prefix, index }) => ({ prefix: Buffer.from(prefix), index }));

/** Splits an xattr name into its EROFS prefix index and the stored suffix (index 0: the whole name). */
export function splitXattrName(name: Buffer): { index: number; suffix: Buffer } {
  for (const { prefix, index } of PREFIX_BYTES) {
    if (name.length >= prefix.length && name.subarray(0, prefix.length).equals(prefix)) {
      return { index, suffix: name.subarray(prefix.length) };
    }
  }
  return { index: 0, suffix: name };
}

/** The EROFS prefix index of a name held as a latin1 string, and the length of the prefix it replaces. */
export function xattrPrefixOf(name: string): { index: number; prefixLength: number } {
  for (const { prefix, index } of XATTR_PREFIXES) if (name.startsWith(prefix)) return { index, prefixLength: prefix.length };
  return { index: 0, prefixLength: 0 };
}

/** The full name of a stored entry; undefined for an index EROFS does not define (or a long prefix). */
export function joinXattrName(index: number, suffix: Buffer): Buffer | undefined {
  if (index === 0) return suffix;
  const entry = PREFIX_BYTES.find((candidate) => candidate.index === index);
  if (entry === undefined) return undefined;
  return Buffer.concat([entry.prefix, suffix]);
}

/** The ibody size for i_xattr_icount (kernel erofs_xattr_ibody_size). */
export function xattrIbodySize(count: number): number {
  return count === 0 ? 0 : XATTR_IBODY_HEADER_SIZE + (count - 1) * 4;
}

// --- directories (struct erofs_dirent, 12 bytes; names follow the dirent array, unterminated)
export const DIRENT_SIZE = 12;
export const FT_UNKNOWN = 0;
export const FT_REG_FILE = 1;
export const FT_DIR = 2;
export const FT_CHRDEV = 3;
export const FT_BLKDEV = 4;
export const FT_FIFO = 5;
export const FT_SOCK = 6;
export const FT_SYMLINK = 7;
export const EROFS_NAME_LEN = 255;

// --- file types (st_mode & S_IFMT)
export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;

export function fileTypeOfMode(mode: number): number {
  switch (mode & S_IFMT) {
    case S_IFREG: return FT_REG_FILE;
    case S_IFDIR: return FT_DIR;
    case S_IFCHR: return FT_CHRDEV;
    case S_IFBLK: return FT_BLKDEV;
    case S_IFIFO: return FT_FIFO;
    case S_IFSOCK: return FT_SOCK;
    case S_IFLNK: return FT_SYMLINK;
    default: return FT_UNKNOWN;
  }
}

// --- xxHash32, for the xattr name filter (kernel lib/xxhash.c; EROFS_FEATURE_COMPAT_XATTR_FILTER)
const PRIME32_1 = 2654435761;
const PRIME32_2 = 2246822519;
const PRIME32_3 = 3266489917;
const PRIME32_4 = 668265263;
const PRIME32_5 = 374761393;

const rotl32 = (x: number, r: number): number => (x << r) | (x >>> (32 - r));
const round32 = (acc: number, input: number): number => Math.imul(rotl32((acc + Math.imul(input, PRIME32_2)) | 0, 13), PRIME32_1);
const u32At = (bytes: Uint8Array, at: number): number => bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24);

/**
 * xxHash32 of input[start, end). The reader hashes each inline xattr name in place in the image (the name
 * filter check), so this takes a range and reads bytes directly; arithmetic is on int32 until the end.
 */
export function xxh32(input: Uint8Array, seed: number, start = 0, end = input.length): number {
  const len = end - start;
  let p = start;
  let h: number;
  if (len >= 16) {
    const limit = end - 16;
    let v1 = (seed + PRIME32_1 + PRIME32_2) | 0;
    let v2 = (seed + PRIME32_2) | 0;
    let v3 = seed | 0;
    let v4 = (seed - PRIME32_1) | 0;
    do {
      v1 = round32(v1, u32At(input, p));
      v2 = round32(v2, u32At(input, p + 4));
      v3 = round32(v3, u32At(input, p + 8));
      v4 = round32(v4, u32At(input, p + 12));
      p += 16;
    } while (p <= limit);
    h = (rotl32(v1, 1) + rotl32(v2, 7) + rotl32(v3, 12) + rotl32(v4, 18)) | 0;
  } else {
    h = (seed + PRIME32_5) | 0;
  }
  h = (h + len) | 0;
  while (p + 4 <= end) {
    h = Math.imul(rotl32((h + Math.imul(u32At(input, p), PRIME32_3)) | 0, 17), PRIME32_4);
    p += 4;
  }
  while (p < end) {
    h = Math.imul(rotl32((h + Math.imul(input[p]!, PRIME32_5)) | 0, 11), PRIME32_1);
    p += 1;
  }
  h = Math.imul(h ^ (h >>> 15), PRIME32_2);
  h = Math.imul(h ^ (h >>> 13), PRIME32_3);
  return (h ^ (h >>> 16)) >>> 0;
}

/** The inode's h_name_filter: a bit cleared for every (index, suffix) hash present (kernel erofs_xattr_filter_hashbit). */
export function xattrNameFilter(names: readonly Buffer[]): number {
  let bits = 0;
  for (const name of names) {
    const { index, suffix } = splitXattrName(name);
    const bit = xxh32(suffix, (XATTR_FILTER_SEED + index) >>> 0) & (XATTR_FILTER_BITS - 1);
    bits = (bits | (1 << bit)) >>> 0;
  }
  return (XATTR_FILTER_DEFAULT & ~bits) >>> 0;
}

export const roundUp = (value: number, to: number): number => Math.ceil(value / to) * to;

let crc32cTable: Uint32Array | undefined;

/** Made at the first checksum, not when the module loads: a boot that does not validate the image needs none. */
function makeCrc32cTable(): Uint32Array {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[i] = c >>> 0;
  }
  return table;
}

/** CRC-32C as the kernel's crc32c(seed, data, len) computes it: reflected, no final inversion. */
export function crc32c(seed: number, data: Uint8Array): number {
  const table = (crc32cTable ??= makeCrc32cTable());
  let crc = seed >>> 0;
  for (let i = 0; i < data.length; i++) crc = table[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return crc >>> 0;
}
