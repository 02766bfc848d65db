// A strict reader of composefs EROFS images. Every structure is bounds-checked against the image size before
// it is read, every field is checked against what the kernel (fs/erofs/{super,inode,dir,namei,xattr,data}.c)
// would accept and what composefs writers produce; anything else is refused with an ImageError naming the
// byte offset. The image is one contiguous byte array: a mapping of the sealed memfd, or a Buffer.
import {
  BLOCK_BITS, BLOCK_SIZE, CHUNK_FORMAT_BLKBITS_MASK, COMPOSEFS_FLAG_HAS_ACL, COMPOSEFS_HEADER_SIZE, COMPOSEFS_HEADER_VERSION,
  COMPOSEFS_MAGIC, crc32c, decodeComposefsHeader, decodeSuperblock, DIRENT_SIZE, EROFS_MAGIC, EROFS_NAME_LEN,
  FEATURE_COMPAT_MTIME, FEATURE_COMPAT_SB_CHKSUM, FEATURE_COMPAT_XATTR_FILTER, FEATURE_INCOMPAT_CHUNKED_FILE, FT_UNKNOWN, fileTypeOfMode, INODE_COMPACT_SIZE,
  INODE_EXTENDED_SIZE, I_DATALAYOUT_BIT, I_VERSION_MASK, I_DATALAYOUT_MASK, LAYOUT_CHUNK_BASED, LAYOUT_FLAT_INLINE,
  LAYOUT_FLAT_PLAIN, NULL_ADDR, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK, SLOT_SIZE,
  SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, type Superblock, XATTR_ENTRY_SIZE, XATTR_FILTER_BITS, XATTR_FILTER_SEED,
  XATTR_IBODY_HEADER_SIZE, XATTR_PREFIXES, splitXattrName, xattrIbodySize, xxh32,
} from './format.ts';

/** A malformed or unsupported image: `offset` is the byte where the offending structure or field is. */
export class ImageError extends Error {
  readonly offset: number;
  constructor(offset: number, reason: string) {
    super(`${reason} at offset ${offset}`);
    this.name = 'ImageError';
    this.offset = offset;
  }
}

const KNOWN_COMPAT = FEATURE_COMPAT_SB_CHKSUM | FEATURE_COMPAT_MTIME | FEATURE_COMPAT_XATTR_FILTER;
/** Per file type (mode >> 12): whether it is valid, a special file (no data), or a type with data. */
const TYPE_VALID = 1;
const TYPE_SPECIAL = 2;
const TYPE_HAS_DATA = 4;
const TYPE_FLAGS = (() => {
  const table = new Uint8Array(16);
  for (const type of [S_IFREG, S_IFDIR, S_IFLNK]) table[type >> 12] = TYPE_VALID | TYPE_HAS_DATA;
  for (const type of [S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK]) table[type >> 12] = TYPE_VALID | TYPE_SPECIAL;
  return table;
})();
/** Symlink targets: at most PATH_MAX - 1 bytes (kernel erofs_fill_symlink / vfs). */
const SYMLINK_MAX = 4095;
/** A size's high 32 bits from which it exceeds Number.MAX_SAFE_INTEGER (2^53 - 1). */
const UNSAFE_SIZE_HIGH = 2 ** (53 - 32);
/** Up to this many xattrs per inode, duplicates are looked for pairwise rather than through a Set. */
const PAIRWISE_XATTRS = 16;
/** EROFS xattr name index -> the prefix it stands for (index 0: none; the others are not defined). */
const XATTR_PREFIX_OF_INDEX: readonly (string | undefined)[] = (() => {
  const table: (string | undefined)[] = new Array(256).fill(undefined);
  table[0] = '';
  for (const { prefix, index } of XATTR_PREFIXES) table[index] = prefix;
  return table;
})();
/** The same as byte lengths, -1 for an undefined index. */
const XATTR_PREFIX_LENGTH = Int16Array.from(XATTR_PREFIX_OF_INDEX, (prefix) => (prefix === undefined ? -1 : prefix.length));
const NO_XATTRS: readonly ParsedXattr[] = Object.freeze([]);
/** Inline xattrs whose name filter bits are remembered, by rank in the xattr body (a power of two). */
const FILTER_BIT_CACHE_RANKS = 4;

/**
 * An xattr as it lies in the image: the name suffix and the value are located, not copied (an image has tens of
 * thousands; the validator compares names bytewise). `name` and `value` make them on demand.
 */
export class ParsedXattr {
  /** The EROFS name index (the prefix); `nameStart`/`nameLength`: the stored suffix, as image offsets. */
  readonly index: number;
  readonly nameStart: number;
  readonly nameLength: number;
  readonly valueStart: number;
  readonly valueSize: number;
  readonly shared: boolean;
  readonly #image: Buffer;

  constructor(image: Buffer, index: number, nameStart: number, nameLength: number, valueStart: number, valueSize: number, shared: boolean) {
    this.#image = image;
    this.index = index;
    this.nameStart = nameStart;
    this.nameLength = nameLength;
    this.valueStart = valueStart;
    this.valueSize = valueSize;
    this.shared = shared;
  }

  /** Full name (prefix and suffix) as latin1. */
  get name(): string {
    return XATTR_PREFIX_OF_INDEX[this.index]! + this.#image.toString('latin1', this.nameStart, this.nameStart + this.nameLength);
  }

  get value(): Buffer {
    return this.#image.subarray(this.valueStart, this.valueStart + this.valueSize);
  }

  /** Whether the stored suffix is `suffix`, compared in place from its last byte (no copy, no string). */
  suffixIs(suffix: Uint8Array): boolean {
    if (this.nameLength !== suffix.length) return false;
    const image = this.#image;
    const start = this.nameStart;
    for (let i = suffix.length - 1; i >= 0; i--) if (image[start + i] !== suffix[i]) return false;
    return true;
  }

  /** Byte `i` of the value (the caller checks i < valueSize). */
  valueByte(i: number): number {
    return this.#image[this.valueStart + i]!;
  }
}

export interface ParsedInode {
  nid: number;
  offset: number;
  extended: boolean;
  layout: number;
  xattrCount: number;
  mode: number;
  nlink: number;
  /** At most Number.MAX_SAFE_INTEGER (larger sizes are refused). */
  size: number;
  /** raw_blkaddr, rdev or the chunk format, by file type and layout. */
  union: number;
  ino: number;
  uid: number;
  gid: number;
  /** The inode's, or the superblock build time's for a compact inode (the seconds: ErofsReader.mtimeSec). */
  mtimeNsec: number;
  rdev: number;
  /** Inode header plus xattr ibody: where inline data starts. */
  headSize: number;
  xattrs: readonly ParsedXattr[];
  /** Bytes from `offset` that belong to this inode: header, xattr body and inline tail or chunk map. */
  extent: number;
  /** Out-of-line data blocks of a flat inode (count 0 when none). */
  firstBlock: number;
  blockCount: number;
}

/** A directory entry; its name is located in the image (`nameStart`, `nameLength`) and made on demand. */
export class DirEntry {
  readonly nid: number;
  readonly fileType: number;
  readonly nameStart: number;
  readonly nameLength: number;
  /** 1 for '.', 2 for '..', 0 for any other name. */
  readonly dots: number;
  readonly #image: Buffer;

  constructor(image: Buffer, nameStart: number, nameLength: number, nid: number, fileType: number, dots: number) {
    this.#image = image;
    this.nameStart = nameStart;
    this.nameLength = nameLength;
    this.nid = nid;
    this.fileType = fileType;
    this.dots = dots;
  }

  /** The name as latin1. */
  get name(): string {
    return this.#image.toString('latin1', this.nameStart, this.nameStart + this.nameLength);
  }
}

export interface ImageInfo {
  isComposefs: boolean;
  composefsVersion: number | undefined;
  headerFlags: number;
  superblock: Superblock;
  size: number;
}

/** A parsed shared xattr and its bit in the per-inode name filter (which depends on the entry only). */
interface SharedXattr {
  xattr: ParsedXattr;
  filterBit: number;
}

export class ErofsReader {
  readonly info: ImageInfo;
  readonly #image: Buffer;
  readonly #view: DataView;
  readonly #size: number;
  readonly #blocks: number;
  readonly #metaStart: number;
  readonly #xattrStart: number;
  readonly #buildTimeNsec: number;
  readonly #hasXattrFilter: boolean;
  readonly #shared = new Map<number, SharedXattr>();
  /** Per rank of an inline xattr: the name index, image offset and length of the name last hashed, and its bit. */
  readonly #filterBitCache = new Float64Array(FILTER_BIT_CACHE_RANKS * 4).fill(-1);

  constructor(image: Uint8Array) {
    this.#image = Buffer.from(image.buffer, image.byteOffset, image.byteLength);
    this.#view = new DataView(image.buffer, image.byteOffset, image.byteLength);
    const size = image.byteLength;
    this.#size = size;
    if (size < SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE) throw new ImageError(0, `image of ${size} bytes is too small to hold a superblock`);
    if (size % BLOCK_SIZE !== 0) throw new ImageError(size, `image size ${size} is not a multiple of the ${BLOCK_SIZE}-byte block`);

    const header = decodeComposefsHeader(this.bytes(0, COMPOSEFS_HEADER_SIZE));
    const isComposefs = header.magic === COMPOSEFS_MAGIC;
    if (isComposefs) {
      if (header.version !== COMPOSEFS_HEADER_VERSION) throw new ImageError(4, `unsupported composefs header version ${header.version}`);
      if ((header.flags & ~COMPOSEFS_FLAG_HAS_ACL) !== 0) throw new ImageError(8, `unknown composefs header flags 0x${header.flags.toString(16)}`);
      // 0 and 1: libcomposefs; 2: composefs-rs' native format (extended inodes only, no root whiteouts).
      if (header.composefsVersion > 2) throw new ImageError(12, `unsupported composefs format version ${header.composefsVersion}`);
    }

    const sb = decodeSuperblock(this.bytes(SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE));
    const at = (field: number): number => SUPERBLOCK_OFFSET + field;
    if (sb.magic !== EROFS_MAGIC) throw new ImageError(at(0), `bad EROFS magic 0x${sb.magic.toString(16)}`);
    if ((sb.featureCompat & ~KNOWN_COMPAT) !== 0) throw new ImageError(at(8), `unsupported compatible features 0x${(sb.featureCompat & ~KNOWN_COMPAT).toString(16)}`);
    if (sb.blockSizeBits !== BLOCK_BITS) throw new ImageError(at(12), `unsupported block size 2^${sb.blockSizeBits} (only 4096)`);
    if (sb.extraSlots !== 0) throw new ImageError(at(13), `unsupported superblock extension slots ${sb.extraSlots}`);
    if ((sb.featureIncompat & ~FEATURE_INCOMPAT_CHUNKED_FILE) !== 0) {
      throw new ImageError(at(80), `unsupported incompatible features 0x${(sb.featureIncompat & ~FEATURE_INCOMPAT_CHUNKED_FILE).toString(16)}`);
    }
    if (sb.compression !== 0) throw new ImageError(at(84), 'compression settings in an uncompressed image');
    if (sb.extraDevices !== 0 || sb.deviceSlotOffset !== 0) throw new ImageError(at(86), 'extra devices are not supported');
    if (sb.dirBlockBits !== 0) throw new ImageError(at(90), `unsupported directory block bits ${sb.dirBlockBits}`);
    if (sb.xattrPrefixCount !== 0 || sb.xattrPrefixStart !== 0) throw new ImageError(at(91), 'long xattr name prefixes are not supported');
    if (sb.packedNid !== 0n) throw new ImageError(at(96), 'a packed inode is not supported');
    if (sb.xattrFilterReserved !== 0) throw new ImageError(at(104), 'xattr filter reserved byte is set');
    if (sb.buildTimeNsec >= 1_000_000_000) throw new ImageError(at(32), `build time nanoseconds ${sb.buildTimeNsec} out of range`);
    if (sb.blocks * BLOCK_SIZE !== size) throw new ImageError(at(36), `superblock says ${sb.blocks} blocks, the image has ${size / BLOCK_SIZE}`);
    if (sb.metaBlockAddress >= sb.blocks) throw new ImageError(at(40), `metadata block ${sb.metaBlockAddress} beyond the image`);
    if (sb.xattrBlockAddress >= sb.blocks) throw new ImageError(at(44), `shared xattr block ${sb.xattrBlockAddress} beyond the image`);
    if (sb.inodeCount === 0n) throw new ImageError(at(16), 'no inodes');
    if ((sb.featureCompat & FEATURE_COMPAT_SB_CHKSUM) !== 0) {
      // erofs_superblock_csum_verify: CRC-32C (seed ~0) of the rest of block 0 from the superblock on, with the
      // checksum field zeroed.
      const rest = Buffer.from(this.bytes(SUPERBLOCK_OFFSET, BLOCK_SIZE - SUPERBLOCK_OFFSET, 'superblock'));
      rest.writeUInt32LE(0, 4);
      const crc = crc32c(0xffffffff, rest);
      if (crc !== sb.checksum) throw new ImageError(at(4), `superblock checksum 0x${sb.checksum.toString(16)} does not match 0x${crc.toString(16)}`);
    }
    this.#blocks = sb.blocks;
    this.#metaStart = sb.metaBlockAddress * BLOCK_SIZE;
    this.#xattrStart = sb.xattrBlockAddress * BLOCK_SIZE;
    this.#buildTimeNsec = sb.buildTimeNsec;
    this.#hasXattrFilter = (sb.featureCompat & FEATURE_COMPAT_XATTR_FILTER) !== 0;
    this.info = {
      isComposefs, composefsVersion: isComposefs ? header.composefsVersion : undefined,
      headerFlags: isComposefs ? header.flags : 0, superblock: sb, size,
    };
  }

  get rootNid(): number {
    return this.info.superblock.rootNid;
  }

  /** Reads [offset, offset + length) after checking it lies inside the image. */
  bytes(offset: number, length: number, what = 'data'): Buffer {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.#size) {
      throw new ImageError(offset, `${what} of ${length} bytes runs past the end of the ${this.#size}-byte image`);
    }
    return this.#image.subarray(offset, offset + length);
  }

  /**
   * Parses and checks inode `nid`. This runs once per inode of the image, at boot with a cold JIT: fields are
   * read straight from the image (sizes as two 32-bit halves, no BigInt), the data checks are inline.
   */
  inode(nid: number): ParsedInode {
    const imageSize = this.#size;
    const view = this.#view;
    const offset = this.#metaStart + nid * SLOT_SIZE;
    if (!Number.isSafeInteger(nid) || nid < 0 || offset + INODE_COMPACT_SIZE > imageSize) {
      throw new ImageError(offset, `inode nid ${nid} lies outside the image`);
    }
    const format = view.getUint16(offset, true);
    if ((format & ~(I_VERSION_MASK | (I_DATALAYOUT_MASK << I_DATALAYOUT_BIT))) !== 0) throw new ImageError(offset, `inode ${nid}: unknown format bits 0x${format.toString(16)}`);
    const extended = (format & I_VERSION_MASK) !== 0;
    const layout = (format >> I_DATALAYOUT_BIT) & I_DATALAYOUT_MASK;
    const inodeSize = extended ? INODE_EXTENDED_SIZE : INODE_COMPACT_SIZE;
    if (offset + inodeSize > imageSize) throw new ImageError(offset, `inode ${nid}: extended inode runs past the end of the image`);
    // struct erofs_inode_compact / erofs_inode_extended (fs/erofs/erofs_fs.h).
    const xattrCount = view.getUint16(offset + 2, true);
    const mode = view.getUint16(offset + 4, true);
    const union = view.getUint32(offset + 16, true);
    const ino = view.getUint32(offset + 20, true);
    const sizeLow = view.getUint32(offset + 8, true);
    const sizeHigh = extended ? view.getUint32(offset + 12, true) : 0;
    const nlink = extended ? view.getUint32(offset + 44, true) : view.getUint16(offset + 6, true);
    const uid = extended ? view.getUint32(offset + 24, true) : view.getUint16(offset + 24, true);
    const gid = extended ? view.getUint32(offset + 28, true) : view.getUint16(offset + 26, true);
    const mtimeNsec = extended ? view.getUint32(offset + 40, true) : this.#buildTimeNsec;

    const type = mode & S_IFMT;
    const typeFlags = TYPE_FLAGS[type >> 12]!;
    if ((typeFlags & TYPE_VALID) === 0) throw new ImageError(offset + 4, `inode ${nid}: invalid file type in mode 0${mode.toString(8)}`);
    if (layout !== LAYOUT_FLAT_PLAIN && layout !== LAYOUT_FLAT_INLINE && layout !== LAYOUT_CHUNK_BASED) {
      throw new ImageError(offset, `inode ${nid}: unsupported data layout ${layout} (compressed or unknown)`);
    }
    if (layout === LAYOUT_CHUNK_BASED && type !== S_IFREG) throw new ImageError(offset, `inode ${nid}: chunk-based layout on a non-regular file`);
    if (extended && mtimeNsec >= 1_000_000_000) throw new ImageError(offset + 40, `inode ${nid}: mtime nanoseconds ${mtimeNsec} out of range`);
    if (nlink === 0) throw new ImageError(offset + (extended ? 44 : 6), `inode ${nid}: zero link count`);
    if ((typeFlags & TYPE_SPECIAL) !== 0 && (sizeLow !== 0 || sizeHigh !== 0)) {
      throw new ImageError(offset + 8, `inode ${nid}: special file with size ${sizeText(sizeLow, sizeHigh)}`);
    }
    if (type === S_IFLNK && (sizeHigh !== 0 || sizeLow === 0 || sizeLow > SYMLINK_MAX)) {
      throw new ImageError(offset + 8, `inode ${nid}: symlink target length ${sizeText(sizeLow, sizeHigh)} (1..${SYMLINK_MAX})`);
    }
    if (type === S_IFDIR && sizeLow === 0 && sizeHigh === 0) throw new ImageError(offset + 8, `inode ${nid}: empty directory data (no . and ..)`);
    if (sizeHigh >= UNSAFE_SIZE_HIGH) throw new ImageError(offset + 8, `inode ${nid}: size ${sizeText(sizeLow, sizeHigh)} too large`);
    const size = sizeHigh * 2 ** 32 + sizeLow;

    const ibody = xattrIbodySize(xattrCount);
    const headSize = inodeSize + ibody;
    if (offset + headSize > imageSize) throw new ImageError(offset + 2, `inode ${nid}: xattrs (${ibody} bytes) run past the end of the image`);
    const xattrs = ibody === 0 ? NO_XATTRS : this.#xattrs(nid, offset + inodeSize, ibody);

    // The data must lie inside the image: blocks, inline tail or chunk map (erofs_map_blocks, erofs_map_chunk).
    let extent = headSize;
    let firstBlock = 0;
    let blockCount = 0;
    if (layout === LAYOUT_CHUNK_BASED) {
      extent = this.#chunkMap(nid, offset, headSize, size, union);
    } else if ((typeFlags & TYPE_HAS_DATA) === 0) {
      if (layout === LAYOUT_FLAT_INLINE) throw new ImageError(offset, `inode ${nid}: inline data on a special file`);
    } else {
      const inline = layout === LAYOUT_FLAT_INLINE;
      const nblocks = Math.ceil(size / BLOCK_SIZE);
      const outOfLine = inline ? Math.max(nblocks - 1, 0) : nblocks;
      if (outOfLine > 0) {
        if (union < 1 || union + outOfLine > this.#blocks) {
          throw new ImageError(offset + 16, `inode ${nid}: data blocks ${union}..${union + outOfLine - 1} outside the image's ${this.#blocks} blocks`);
        }
        firstBlock = union;
        blockCount = outOfLine;
      }
      if (inline && size > 0) {
        // erofs_map_blocks: the tail must not cross a block boundary.
        const tail = size - outOfLine * BLOCK_SIZE;
        const start = offset + headSize;
        if ((start % BLOCK_SIZE) + tail > BLOCK_SIZE) throw new ImageError(start, `inode ${nid}: inline tail of ${tail} bytes crosses a block boundary`);
        if (start + tail > imageSize) throw new ImageError(start, `inode ${nid}: inline tail runs past the end of the image`);
        extent += tail;
      }
    }
    return {
      nid, offset, extended, layout, xattrCount, mode, nlink, size, union, ino, uid, gid, mtimeNsec,
      rdev: type === S_IFCHR || type === S_IFBLK ? union : 0,
      headSize, xattrs, extent, firstBlock, blockCount,
    };
  }

  /** The inode's mtime seconds (time64_t); a compact inode has the superblock's build time. */
  mtimeSec(node: ParsedInode): bigint {
    return node.extended ? this.#view.getBigInt64(node.offset + 32, true) : this.info.superblock.buildTime;
  }

  /** The xattr body: `ibody` bytes from image offset `start`. */
  #xattrs(nid: number, start: number, ibody: number): ParsedXattr[] {
    const image = this.#image;
    const filter = this.#view.getUint32(start, true);
    const sharedCount = image[start + 4]!;
    for (let i = 5; i < XATTR_IBODY_HEADER_SIZE; i++) {
      if (image[start + i] !== 0) throw new ImageError(start + i, `inode ${nid}: xattr header reserved bytes are set`);
    }
    if (XATTR_IBODY_HEADER_SIZE + sharedCount * 4 > ibody) throw new ImageError(start + 4, `inode ${nid}: ${sharedCount} shared xattrs do not fit the xattr body`);
    const checkFilter = this.#hasXattrFilter && filter !== 0;
    const xattrs: ParsedXattr[] = [];
    const end = start + ibody;
    let pos = start + XATTR_IBODY_HEADER_SIZE + sharedCount * 4;
    while (pos < end) {
      if (pos + XATTR_ENTRY_SIZE > end) throw new ImageError(pos, `inode ${nid}: truncated xattr entry`);
      pos += this.#xattrEntry(pos, end, false, checkFilter ? filter : 0, xattrs, xattrs.length);
    }
    for (let i = 0; i < sharedCount; i++) {
      const idAt = start + XATTR_IBODY_HEADER_SIZE + i * 4;
      const id = this.#view.getUint32(idAt, true);
      const at = this.#xattrStart + id * 4;
      if (at + XATTR_ENTRY_SIZE > this.#size) throw new ImageError(idAt, `inode ${nid}: shared xattr id ${id} outside the image`);
      // Each shared entry is parsed once, however many inodes refer to it (bounds the work on hostile images).
      let entry = this.#shared.get(id);
      if (entry === undefined) {
        const length = XATTR_ENTRY_SIZE + image[at]! + this.#view.getUint16(at + 2, true);
        if (at + length > this.#size) throw new ImageError(at, `shared xattr of ${length} bytes runs past the end of the ${this.#size}-byte image`);
        const parsed: ParsedXattr[] = [];
        this.#xattrEntry(at, at + length, true, 0, parsed, 0);
        const xattr = parsed[0]!;
        const split = splitXattrName(Buffer.from(xattr.name, 'latin1'));
        entry = { xattr, filterBit: filterBit(split.index, split.suffix, 0, split.suffix.length) };
        this.#shared.set(id, entry);
      }
      if (checkFilter && ((filter >>> entry.filterBit) & 1) !== 0) throw new ImageError(at, `xattr name filter hides ${printable(entry.xattr.name)}`);
      xattrs.push(entry.xattr);
    }
    const n = xattrs.length;
    if (n > 1 && n <= PAIRWISE_XATTRS) {
      // The same first duplicate (in order) as the Set below reports.
      for (let i = 1; i < n; i++) {
        const xattr = xattrs[i]!;
        for (let j = 0; j < i; j++) {
          if (sameXattrName(this.#view, xattrs[j]!, xattr)) throw new ImageError(start, `inode ${nid}: xattr ${printable(xattr.name)} appears twice`);
        }
      }
    } else if (n > PAIRWISE_XATTRS) {
      const names = new Set<string>();
      for (let i = 0; i < n; i++) {
        const name = xattrs[i]!.name;
        if (names.has(name)) throw new ImageError(start, `inode ${nid}: xattr ${printable(name)} appears twice`);
        names.add(name);
      }
    }
    return xattrs;
  }

  /**
   * Parses the entry at image offset `pos` (its area ends at `end`) into `out`; returns its size with padding.
   * When `filter` is set, checks that its bit for this name is clear: a set bit tells the kernel the name is
   * absent (erofs_xattr_get), so one wrongly set would hide the xattr. `position`: the entry's rank in the body.
   */
  #xattrEntry(pos: number, end: number, shared: boolean, filter: number, out: ParsedXattr[], position: number): number {
    const image = this.#image;
    const nameLength = image[pos]!;
    const index = image[pos + 1]!;
    const valueSize = image[pos + 2]! | (image[pos + 3]! << 8);
    const nameStart = pos + XATTR_ENTRY_SIZE;
    const valueStart = nameStart + nameLength;
    const size = (XATTR_ENTRY_SIZE + nameLength + valueSize + 3) & ~3;
    if (valueStart + valueSize > end) throw new ImageError(pos, `xattr entry of ${size} bytes runs past its area`);
    const prefixLength = XATTR_PREFIX_LENGTH[index]!;
    if (prefixLength < 0) throw new ImageError(pos + 1, `unsupported xattr name index ${index}`);
    if (prefixLength + nameLength === 0 || prefixLength + nameLength > 255) throw new ImageError(pos, `invalid xattr name of ${prefixLength + nameLength} bytes`);
    for (let i = nameStart; i < valueStart; i++) if (image[i] === 0) throw new ImageError(pos, 'NUL byte in an xattr name');
    const xattr = new ParsedXattr(image, index, nameStart, nameLength, valueStart, valueSize, shared);
    if (filter !== 0 && ((filter >>> this.#inlineFilterBit(position, index, nameStart, nameLength)) & 1) !== 0) {
      throw new ImageError(pos, `xattr name filter hides ${printable(xattr.name)}`);
    }
    out.push(xattr);
    return Math.min(size, end - pos);
  }

  /**
   * The filter bit of an inline name. Names repeat from inode to inode at the same rank (every composefs file
   * carries trusted.overlay.metacopy, then trusted.overlay.redirect), so the bit last computed at this rank is
   * reused when the name's bytes match: a compare instead of an xxh32 per xattr.
   */
  #inlineFilterBit(position: number, index: number, nameStart: number, nameLength: number): number {
    const cache = this.#filterBitCache;
    const at = (position & (FILTER_BIT_CACHE_RANKS - 1)) * 4;
    if (cache[at] === index && cache[at + 2] === nameLength && compareBytes(this.#view, cache[at + 1]!, nameLength, nameStart, nameLength) === 0) {
      return cache[at + 3]!;
    }
    const bit = filterBit(index, this.#image, nameStart, nameStart + nameLength);
    cache[at] = index;
    cache[at + 1] = nameStart;
    cache[at + 2] = nameLength;
    cache[at + 3] = bit;
    return bit;
  }

  /** Checks the chunk map of a chunk-based file (block addresses or NULL_ADDR holes); returns the inode's extent. */
  #chunkMap(nid: number, offset: number, headSize: number, size: number, union: number): number {
    const format = union & 0xffff;
    if ((format & ~CHUNK_FORMAT_BLKBITS_MASK) !== 0) throw new ImageError(offset + 16, `inode ${nid}: unsupported chunk format 0x${format.toString(16)} (chunk indexes)`);
    const chunkBits = BLOCK_BITS + (format & CHUNK_FORMAT_BLKBITS_MASK);
    const count = Math.ceil(size / 2 ** chunkBits); // exact: a division by a power of two
    const start = Math.ceil((offset + headSize) / 4) * 4;
    if (start + count * 4 > this.#size) throw new ImageError(start, `inode ${nid}: chunk map of ${count} entries runs past the end of the image`);
    const blocksPerChunk = 2 ** (chunkBits - BLOCK_BITS);
    const view = this.#view;
    const blocks = this.#blocks;
    for (let i = 0; i < count; i++) {
      const address = view.getUint32(start + i * 4, true);
      if (address !== NULL_ADDR && address + blocksPerChunk > blocks) {
        throw new ImageError(start + i * 4, `inode ${nid}: chunk ${i} at block ${address} outside the image`);
      }
    }
    return start + count * 4 - offset;
  }

  /** The bytes of a flat (plain or inline) file, symlink or directory: callers bound `size` first. */
  data(node: ParsedInode, from = 0, length = node.size - from): Buffer {
    if (node.layout === LAYOUT_CHUNK_BASED) {
      return Buffer.alloc(length); // composefs stub files: all chunks are holes; real content is in the object
    }
    const size = node.size;
    if (from < 0 || length < 0 || from + length > size) throw new ImageError(node.offset, `inode ${node.nid}: read beyond its size`);
    const nblocks = Math.ceil(size / BLOCK_SIZE);
    const inlineFrom = node.layout === LAYOUT_FLAT_INLINE ? Math.max(nblocks - 1, 0) * BLOCK_SIZE : size;
    const parts: Buffer[] = [];
    let pos = from;
    const end = from + length;
    while (pos < end) {
      if (pos >= inlineFrom) {
        parts.push(this.bytes(node.offset + node.headSize + (pos - inlineFrom), end - pos, 'inline data'));
        break;
      }
      const n = Math.min(end, inlineFrom, (Math.floor(pos / BLOCK_SIZE) + 1) * BLOCK_SIZE) - pos;
      parts.push(this.bytes(node.union * BLOCK_SIZE + pos, n, 'data block'));
      pos += n;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  symlinkTarget(node: ParsedInode): Buffer {
    const target = this.data(node);
    const nul = target.indexOf(0);
    if (nul >= 0) throw new ImageError(node.offset, `inode ${node.nid}: NUL byte in symlink target`);
    return target;
  }

  /**
   * The entries of a directory, block by block, checked as the kernel's erofs_readdir and erofs_namei read them.
   * Names are compared in place, bytewise (erofs_namei's dirnamecmp), and made into strings only on demand.
   */
  readDir(node: ParsedInode): DirEntry[] {
    const size = node.size;
    // Data from here on is the inline tail (the last block of a flat inline inode).
    const inlineFrom = node.layout === LAYOUT_FLAT_INLINE ? Math.max(Math.ceil(size / BLOCK_SIZE) - 1, 0) * BLOCK_SIZE : size;
    const entries: DirEntry[] = [];
    for (let blockStart = 0; blockStart < size; blockStart += BLOCK_SIZE) {
      const length = Math.min(BLOCK_SIZE, size - blockStart);
      const inTail = blockStart >= inlineFrom;
      const at = inTail ? node.offset + node.headSize + (blockStart - inlineFrom) : node.union * BLOCK_SIZE + blockStart;
      if (at + length > this.#size) {
        throw new ImageError(at, `${inTail ? 'inline data' : 'data block'} of ${length} bytes runs past the end of the ${this.#size}-byte image`);
      }
      if (length < DIRENT_SIZE) throw new ImageError(at, `directory ${node.nid}: block of ${length} bytes holds no entry`);
      const firstNameOffset = this.#view.getUint16(at + 8, true);
      if (firstNameOffset < DIRENT_SIZE || firstNameOffset % DIRENT_SIZE !== 0 || firstNameOffset > length) {
        throw new ImageError(at + 8, `directory ${node.nid}: invalid first name offset ${firstNameOffset}`);
      }
      const count = firstNameOffset / DIRENT_SIZE;
      // One call per entry: V8 optimizes #dirent after a few hundred entries, where a loop body here would wait
      // for on-stack replacement in a large directory (at boot, with a cold JIT).
      for (let i = 0; i < count; i++) entries.push(this.#dirent(node.nid, at, length, i, count, firstNameOffset, entries.length === 0 ? undefined : entries[entries.length - 1]));
    }
    return entries;
  }

  /**
   * Entry `i` of the `count` in the directory block of `length` bytes at image offset `at`. `previous`: the entry
   * before it in the directory (in this block, or the last of the block before).
   */
  #dirent(dirNid: number, at: number, length: number, i: number, count: number, firstNameOffset: number, previous: DirEntry | undefined): DirEntry {
    const image = this.#image;
    const view = this.#view;
    const dirent = at + i * DIRENT_SIZE;
    const nameOffset = view.getUint16(dirent + 8, true);
    const nameEnd = i + 1 < count ? view.getUint16(dirent + DIRENT_SIZE + 8, true) : length;
    if (nameOffset < firstNameOffset || nameEnd > length || nameEnd <= nameOffset) {
      throw new ImageError(dirent + 8, `directory ${dirNid}: name offsets ${nameOffset}..${nameEnd} out of order or outside the block`);
    }
    const nameStart = at + nameOffset;
    let nameLength = nameEnd - nameOffset;
    if (i + 1 === count) {
      // The last name runs to the end of the block or to the first NUL (erofs_readdir: strnlen).
      const blockEnd = at + nameEnd;
      let nul = nameStart;
      while (nul < blockEnd && image[nul] !== 0) nul++;
      if (nul < blockEnd) {
        for (let j = nul; j < blockEnd; j++) {
          if (image[j] !== 0) throw new ImageError(j, `directory ${dirNid}: garbage after the last name`);
        }
        nameLength = nul - nameStart;
      }
    }
    if (nameLength === 0 || nameLength > EROFS_NAME_LEN) throw new ImageError(nameStart, `directory ${dirNid}: name of ${nameLength} bytes`);
    for (let j = nameStart; j < nameStart + nameLength; j++) {
      if (image[j] === 0 || image[j] === 0x2f) throw new ImageError(j, `directory ${dirNid}: name contains NUL or '/'`);
    }
    // erofs_namei binary-searches names: they must be strictly ascending within the directory.
    if (previous !== undefined && compareBytes(view, previous.nameStart, previous.nameLength, nameStart, nameLength) >= 0) {
      throw new ImageError(nameStart, `directory ${dirNid}: names not in ascending order${i === 0 ? ' across blocks' : ''}`);
    }
    const nidLow = view.getUint32(dirent, true);
    const nidHigh = view.getUint32(dirent + 4, true);
    const fileType = image[dirent + 10]!;
    if (image[dirent + 11] !== 0) throw new ImageError(dirent + 11, `directory ${dirNid}: dirent reserved byte set`);
    if (fileType === FT_UNKNOWN || fileType > 7) throw new ImageError(dirent + 10, `directory ${dirNid}: invalid file type ${fileType}`);
    const nid = nidHigh * 2 ** 32 + nidLow;
    const dots = nameLength <= 2 && image[nameStart] === 0x2e && (nameLength === 1 || image[nameStart + 1] === 0x2e) ? nameLength : 0;
    const entry = new DirEntry(image, nameStart, nameLength, nid, fileType, dots);
    if (nidHigh >= 2 ** 16 || this.#metaStart + nid * SLOT_SIZE + INODE_COMPACT_SIZE > this.#size) {
      throw new ImageError(dirent, `directory ${dirNid}: entry ${printable(entry.name)} points to nid ${nid} outside the image`);
    }
    return entry;
  }
}

/** The bit of the inode's xattr name filter (bloom filter) for the name `index` + bytes[start, end). */
function filterBit(index: number, bytes: Uint8Array, start: number, end: number): number {
  return xxh32(bytes, (XATTR_FILTER_SEED + index) >>> 0, start, end) & (XATTR_FILTER_BITS - 1);
}

/** memcmp order of the bytes [a, a + aLength) and [b, b + bLength), a shorter prefix first: < 0, 0 or > 0. */
function compareBytes(view: DataView, a: number, aLength: number, b: number, bLength: number): number {
  const common = Math.min(aLength, bLength);
  let i = 0;
  // Four bytes at a time, read big-endian: their order as integers is memcmp's.
  for (; i + 4 <= common; i += 4) {
    const x = view.getUint32(a + i);
    const y = view.getUint32(b + i);
    if (x !== y) return x < y ? -1 : 1;
  }
  for (; i < common; i++) {
    const difference = view.getUint8(a + i) - view.getUint8(b + i);
    if (difference !== 0) return difference;
  }
  return aLength - bLength;
}

/** Whether two xattrs have the same full name (prefix and suffix). */
function sameXattrName(view: DataView, a: ParsedXattr, b: ParsedXattr): boolean {
  if (a.index !== b.index) {
    // Another prefix can still spell the same name (index 0 holds whole names): rare, compared as strings.
    return XATTR_PREFIX_LENGTH[a.index]! + a.nameLength === XATTR_PREFIX_LENGTH[b.index]! + b.nameLength && a.name === b.name;
  }
  return a.nameLength === b.nameLength && compareBytes(view, a.nameStart, a.nameLength, b.nameStart, b.nameLength) === 0;
}

/** A size for error messages: exact, however large. */
function sizeText(low: number, high: number): string {
  return high === 0 ? String(low) : String((BigInt(high) << 32n) | BigInt(low));
}

/** A name for error messages: printable ASCII kept, anything else as \xNN. */
export function printable(name: string): string {
  let out = '';
  for (const ch of name) {
    const code = ch.charCodeAt(0);
    out += code >= 0x21 && code <= 0x7e && ch !== '\\' ? ch : `\\x${code.toString(16).padStart(2, '0')}`;
  }
  return `'${out}'`;
}

/** Directory entry file type must match the inode it points to. */
export function checkEntryType(entry: DirEntry, target: ParsedInode, directoryOffset: number): void {
  if (fileTypeOfMode(target.mode) !== entry.fileType) {
    throw new ImageError(directoryOffset, `entry ${printable(entry.name)} has file type ${entry.fileType} but inode ${target.nid} is of type ${fileTypeOfMode(target.mode)}`);
  }
}
