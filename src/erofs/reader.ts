// A strict reader of composefs EROFS images. Every structure is bounds-checked against the image size before
// it is read, every field is checked against what the kernel (fs/erofs/{super,inode,dir,namei,xattr,data}.c)
// would accept and what composefs writers produce; anything else is refused with an ImageError naming the
// byte offset. The image is one contiguous byte array: a mapping of the sealed memfd, or a Buffer.
import {
  BLOCK_BITS, BLOCK_SIZE, CHUNK_FORMAT_BLKBITS_MASK, COMPOSEFS_FLAG_HAS_ACL, COMPOSEFS_HEADER_SIZE, COMPOSEFS_HEADER_VERSION,
  COMPOSEFS_MAGIC, crc32c, decodeComposefsHeader, decodeInode, decodeSuperblock, DIRENT_SIZE, EROFS_MAGIC, EROFS_NAME_LEN,
  FEATURE_COMPAT_MTIME, FEATURE_COMPAT_SB_CHKSUM, FEATURE_COMPAT_XATTR_FILTER, FEATURE_INCOMPAT_CHUNKED_FILE, FT_UNKNOWN, fileTypeOfMode, type Inode, INODE_COMPACT_SIZE,
  INODE_EXTENDED_SIZE, I_DATALAYOUT_BIT, I_DATALAYOUT_MASK, LAYOUT_CHUNK_BASED, LAYOUT_FLAT_INLINE,
  LAYOUT_FLAT_PLAIN, NULL_ADDR, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK, SLOT_BITS,
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
const VALID_TYPES = new Set([S_IFREG, S_IFDIR, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK]);
const SPECIAL_TYPES = new Set([S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK]);
/** Symlink targets: at most PATH_MAX - 1 bytes (kernel erofs_fill_symlink / vfs). */
const SYMLINK_MAX = 4095;
const SYMLINK_MAX_BIG = BigInt(SYMLINK_MAX);
const MAX_SAFE_BIG = BigInt(Number.MAX_SAFE_INTEGER);
/** Up to this many xattrs per inode, duplicates are looked for pairwise rather than through a Set. */
const PAIRWISE_XATTRS = 16;
/** EROFS xattr name index -> the prefix it stands for (index 0: none; the others are not defined). */
const XATTR_PREFIX_OF_INDEX: readonly (string | undefined)[] = (() => {
  const table: (string | undefined)[] = new Array(256).fill(undefined);
  table[0] = '';
  for (const { prefix, index } of XATTR_PREFIXES) table[index] = prefix;
  return table;
})();
/** At most this many bytes are read per callback call (directory blocks, chunk maps). */
const MAX_READ = BLOCK_SIZE;
/**
 * An inode is read with this many bytes (less at the end of the image): enough for a composefs file's header,
 * xattr body and chunk map, which are then parsed from this one view instead of one read each.
 */
const INODE_PEEK = 256;

export interface ParsedXattr {
  /** Full name as latin1 bytes. */
  name: string;
  value: Buffer;
  shared: boolean;
}

export interface ParsedInode {
  nid: number;
  offset: number;
  inode: Inode;
  /** Inode header plus xattr ibody: where inline data starts. */
  headSize: number;
  xattrs: ParsedXattr[];
  mtimeSec: bigint;
  mtimeNsec: number;
  rdev: number;
  /** Bytes from `offset` that belong to this inode: header, xattr body and inline tail or chunk map. */
  extent: number;
  /** Out-of-line data blocks of a flat inode (count 0 when none). */
  firstBlock: number;
  blockCount: number;
}

export interface DirEntry {
  name: string;
  nid: number;
  fileType: number;
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
  readonly #size: number;
  readonly #metaStart: number;
  readonly #xattrStart: number;
  readonly #shared = new Map<number, SharedXattr>();

  constructor(image: Uint8Array) {
    this.#image = Buffer.from(image.buffer, image.byteOffset, image.byteLength);
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
    this.#metaStart = sb.metaBlockAddress * BLOCK_SIZE;
    this.#xattrStart = sb.xattrBlockAddress * BLOCK_SIZE;
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

  inode(nid: number): ParsedInode {
    const offset = this.#metaStart + nid * (1 << SLOT_BITS);
    if (!Number.isSafeInteger(nid) || nid < 0 || offset + INODE_COMPACT_SIZE > this.#size) {
      throw new ImageError(offset, `inode nid ${nid} lies outside the image`);
    }
    // One read for either inode size (an extended one is checked to fit below), and for what follows when it fits.
    const first = this.bytes(offset, Math.min(INODE_PEEK, this.#size - offset), 'inode');
    const format = first.readUInt16LE(0);
    if ((format & ~(1 | (I_DATALAYOUT_MASK << I_DATALAYOUT_BIT))) !== 0) throw new ImageError(offset, `inode ${nid}: unknown format bits 0x${format.toString(16)}`);
    const extended = (format & 1) === 1;
    const inodeSize = extended ? INODE_EXTENDED_SIZE : INODE_COMPACT_SIZE;
    if (first.length < inodeSize) throw new ImageError(offset, `inode ${nid}: extended inode runs past the end of the image`);
    const raw = first;
    const inode = decodeInode(raw);
    const type = inode.mode & S_IFMT;
    if (!VALID_TYPES.has(type)) throw new ImageError(offset + 4, `inode ${nid}: invalid file type in mode 0${inode.mode.toString(8)}`);
    if (inode.layout !== LAYOUT_FLAT_PLAIN && inode.layout !== LAYOUT_FLAT_INLINE && inode.layout !== LAYOUT_CHUNK_BASED) {
      throw new ImageError(offset, `inode ${nid}: unsupported data layout ${inode.layout} (compressed or unknown)`);
    }
    if (inode.layout === LAYOUT_CHUNK_BASED && type !== S_IFREG) throw new ImageError(offset, `inode ${nid}: chunk-based layout on a non-regular file`);
    if (extended && inode.mtimeNsec >= 1_000_000_000) throw new ImageError(offset + 40, `inode ${nid}: mtime nanoseconds ${inode.mtimeNsec} out of range`);
    if (inode.nlink === 0) throw new ImageError(offset + (extended ? 44 : 6), `inode ${nid}: zero link count`);
    if (SPECIAL_TYPES.has(type) && inode.size !== 0n) {
      throw new ImageError(offset + 8, `inode ${nid}: special file with size ${inode.size}`);
    }
    if (type === S_IFLNK && (inode.size === 0n || inode.size > SYMLINK_MAX_BIG)) {
      throw new ImageError(offset + 8, `inode ${nid}: symlink target length ${inode.size} (1..${SYMLINK_MAX})`);
    }
    if (type === S_IFDIR && inode.size === 0n) throw new ImageError(offset + 8, `inode ${nid}: empty directory data (no . and ..)`);
    if (inode.size > MAX_SAFE_BIG) throw new ImageError(offset + 8, `inode ${nid}: size ${inode.size} too large`);

    const ibody = xattrIbodySize(inode.xattrCount);
    const headSize = inodeSize + ibody;
    if (offset + headSize > this.#size) throw new ImageError(offset + 2, `inode ${nid}: xattrs (${ibody} bytes) run past the end of the image`);
    const xattrs = ibody === 0
      ? []
      : headSize <= first.length
        ? this.#xattrs(nid, first, inodeSize, offset + inodeSize, ibody)
        : this.#xattrs(nid, this.bytes(offset + inodeSize, ibody, 'inode xattrs'), 0, offset + inodeSize, ibody);
    const sb = this.info.superblock;
    const parsed: ParsedInode = {
      nid, offset, inode, headSize, xattrs,
      mtimeSec: extended ? inode.mtime : sb.buildTime,
      mtimeNsec: extended ? inode.mtimeNsec : sb.buildTimeNsec,
      rdev: type === S_IFCHR || type === S_IFBLK ? inode.union : 0,
      extent: headSize, firstBlock: 0, blockCount: 0,
    };
    this.#checkData(parsed, first);
    return parsed;
  }

  /** The xattr body is the `ibody` bytes of `buf` from `base`; it starts at image offset `start`. */
  #xattrs(nid: number, buf: Buffer, base: number, start: number, ibody: number): ParsedXattr[] {
    const filter = buf.readUInt32LE(base);
    const sharedCount = buf[base + 4]!;
    for (let i = 5; i < XATTR_IBODY_HEADER_SIZE; i++) {
      if (buf[base + i] !== 0) throw new ImageError(start + i, `inode ${nid}: xattr header reserved bytes are set`);
    }
    if (XATTR_IBODY_HEADER_SIZE + sharedCount * 4 > ibody) throw new ImageError(start + 4, `inode ${nid}: ${sharedCount} shared xattrs do not fit the xattr body`);
    const checkFilter = (this.info.superblock.featureCompat & FEATURE_COMPAT_XATTR_FILTER) !== 0 && filter !== 0;
    const xattrs: ParsedXattr[] = [];
    let pos = XATTR_IBODY_HEADER_SIZE + sharedCount * 4;
    while (pos < ibody) {
      if (pos + XATTR_ENTRY_SIZE > ibody) throw new ImageError(start + pos, `inode ${nid}: truncated xattr entry`);
      pos += this.#xattrEntry(buf, base + pos, base + ibody, start + pos, false, checkFilter ? filter : 0, xattrs);
    }
    for (let i = 0; i < sharedCount; i++) {
      const id = buf.readUInt32LE(base + XATTR_IBODY_HEADER_SIZE + i * 4);
      const at = this.#xattrStart + id * 4;
      if (at + XATTR_ENTRY_SIZE > this.#size) throw new ImageError(start + XATTR_IBODY_HEADER_SIZE + i * 4, `inode ${nid}: shared xattr id ${id} outside the image`);
      // Each shared entry is parsed once, however many inodes refer to it (bounds the work on hostile images).
      let entry = this.#shared.get(id);
      if (entry === undefined) {
        const head = this.bytes(at, XATTR_ENTRY_SIZE, 'shared xattr');
        const length = XATTR_ENTRY_SIZE + head[0]! + head.readUInt16LE(2);
        const parsed: ParsedXattr[] = [];
        this.#xattrEntry(this.bytes(at, length, 'shared xattr'), 0, length, at, true, 0, parsed);
        const xattr = parsed[0]!;
        const split = splitXattrName(Buffer.from(xattr.name, 'latin1'));
        entry = { xattr, filterBit: filterBit(split.index, split.suffix) };
        this.#shared.set(id, entry);
      }
      if (checkFilter && ((filter >>> entry.filterBit) & 1) !== 0) throw new ImageError(at, `xattr name filter hides ${printable(entry.xattr.name)}`);
      xattrs.push(entry.xattr);
    }
    const n = xattrs.length;
    if (n > 1 && n <= PAIRWISE_XATTRS) {
      // The same first duplicate (in order) as the Set below reports.
      for (let i = 1; i < n; i++) {
        const name = xattrs[i]!.name;
        for (let j = 0; j < i; j++) {
          if (xattrs[j]!.name === name) throw new ImageError(start, `inode ${nid}: xattr ${printable(name)} appears twice`);
        }
      }
    } else if (n > PAIRWISE_XATTRS) {
      const names = new Set<string>();
      for (const xattr of xattrs) {
        if (names.has(xattr.name)) throw new ImageError(start, `inode ${nid}: xattr ${printable(xattr.name)} appears twice`);
        names.add(xattr.name);
      }
    }
    return xattrs;
  }

  /**
   * Parses the entry at `pos` of `buf` into `out`; returns its size with padding. When `filter` is set, checks
   * that its bit for this name is clear: a set bit tells the kernel the name is absent (erofs_xattr_get).
   */
  #xattrEntry(buf: Buffer, pos: number, end: number, offset: number, shared: boolean, filter: number, out: ParsedXattr[]): number {
    const nameLength = buf[pos]!;
    const index = buf[pos + 1]!;
    const valueSize = buf.readUInt16LE(pos + 2);
    const nameStart = pos + XATTR_ENTRY_SIZE;
    const valueStart = nameStart + nameLength;
    const size = (XATTR_ENTRY_SIZE + nameLength + valueSize + 3) & ~3;
    if (valueStart + valueSize > end) throw new ImageError(offset, `xattr entry of ${size} bytes runs past its area`);
    const prefix = XATTR_PREFIX_OF_INDEX[index];
    if (prefix === undefined) throw new ImageError(offset + 1, `unsupported xattr name index ${index}`);
    if (prefix.length + nameLength === 0 || prefix.length + nameLength > 255) throw new ImageError(offset, `invalid xattr name of ${prefix.length + nameLength} bytes`);
    for (let i = nameStart; i < valueStart; i++) if (buf[i] === 0) throw new ImageError(offset, 'NUL byte in an xattr name');
    const name = prefix + buf.toString('latin1', nameStart, valueStart);
    if (filter !== 0 && ((filter >>> filterBit(index, buf.subarray(nameStart, valueStart))) & 1) !== 0) {
      // A set filter bit tells the kernel the name is absent (erofs_xattr_get): one wrongly set hides an xattr.
      throw new ImageError(offset, `xattr name filter hides ${printable(name)}`);
    }
    out.push({ name, value: buf.subarray(valueStart, valueStart + valueSize), shared });
    return Math.min(size, end - pos);
  }

  /** Checks that the inode's data (blocks, inline tail, chunk map) lies inside the image. */
  /** `head` holds the image from the inode's offset on (as much as was read with it). */
  #checkData(node: ParsedInode, head: Buffer): void {
    const { inode, nid, offset } = node;
    const size = Number(inode.size);
    const blocks = this.info.superblock.blocks;
    if (inode.layout === LAYOUT_CHUNK_BASED) {
      this.#chunkMap(node, head);
      return;
    }
    const nblocks = Math.ceil(size / BLOCK_SIZE);
    const inline = inode.layout === LAYOUT_FLAT_INLINE;
    const outOfLine = inline ? Math.max(nblocks - 1, 0) : nblocks;
    const type = inode.mode & S_IFMT;
    const hasData = type === S_IFREG || type === S_IFDIR || type === S_IFLNK;
    if (!hasData) {
      if (inline) throw new ImageError(offset, `inode ${nid}: inline data on a special file`);
      return;
    }
    if (outOfLine > 0 && (inode.union < 1 || inode.union + outOfLine > blocks)) {
      throw new ImageError(offset + 16, `inode ${nid}: data blocks ${inode.union}..${inode.union + outOfLine - 1} outside the image's ${blocks} blocks`);
    }
    if (outOfLine > 0) {
      node.firstBlock = inode.union;
      node.blockCount = outOfLine;
    }
    if (inline && size > 0) {
      // erofs_map_blocks: the tail must not cross a block boundary.
      const tail = size - outOfLine * BLOCK_SIZE;
      const start = offset + node.headSize;
      if ((start % BLOCK_SIZE) + tail > BLOCK_SIZE) throw new ImageError(start, `inode ${nid}: inline tail of ${tail} bytes crosses a block boundary`);
      if (start + tail > this.#size) throw new ImageError(start, `inode ${nid}: inline tail runs past the end of the image`);
      node.extent += tail;
    }
  }

  /** The chunk map of a chunk-based file: block addresses or NULL_ADDR (holes). */
  #chunkMap(node: ParsedInode, head: Buffer): void {
    const { inode, nid, offset } = node;
    const format = inode.union & 0xffff;
    if ((format & ~CHUNK_FORMAT_BLKBITS_MASK) !== 0) throw new ImageError(offset + 16, `inode ${nid}: unsupported chunk format 0x${format.toString(16)} (chunk indexes)`);
    const chunkBits = BLOCK_BITS + (format & CHUNK_FORMAT_BLKBITS_MASK);
    const count = Number((inode.size + (1n << BigInt(chunkBits)) - 1n) >> BigInt(chunkBits));
    const start = Math.ceil((offset + node.headSize) / 4) * 4;
    if (start + count * 4 > this.#size) throw new ImageError(start, `inode ${nid}: chunk map of ${count} entries runs past the end of the image`);
    node.extent = start + count * 4 - offset;
    const blocksPerChunk = 2 ** (chunkBits - BLOCK_BITS);
    for (let done = 0; done < count;) {
      const n = Math.min(count - done, MAX_READ / 4);
      // A short map usually lies inside the bytes read with the inode.
      const inHead = start + count * 4 - offset <= head.length;
      const map = inHead ? head : this.bytes(start + done * 4, n * 4, 'chunk map');
      const base = inHead ? start - offset + done * 4 : 0;
      for (let i = 0; i < n; i++) {
        const address = map.readUInt32LE(base + i * 4);
        if (address !== NULL_ADDR && address + blocksPerChunk > this.info.superblock.blocks) {
          throw new ImageError(start + (done + i) * 4, `inode ${nid}: chunk ${done + i} at block ${address} outside the image`);
        }
      }
      done += n;
    }
  }

  /** The bytes of a flat (plain or inline) file, symlink or directory: callers bound `size` first. */
  data(node: ParsedInode, from = 0, length = Number(node.inode.size) - from): Buffer {
    const { inode } = node;
    if (inode.layout === LAYOUT_CHUNK_BASED) {
      return Buffer.alloc(length); // composefs stub files: all chunks are holes; real content is in the object
    }
    const size = Number(inode.size);
    if (from < 0 || length < 0 || from + length > size) throw new ImageError(node.offset, `inode ${node.nid}: read beyond its size`);
    const nblocks = Math.ceil(size / BLOCK_SIZE);
    const inlineFrom = inode.layout === LAYOUT_FLAT_INLINE ? Math.max(nblocks - 1, 0) * BLOCK_SIZE : size;
    const parts: Buffer[] = [];
    let pos = from;
    const end = from + length;
    while (pos < end) {
      if (pos >= inlineFrom) {
        parts.push(this.bytes(node.offset + node.headSize + (pos - inlineFrom), end - pos, 'inline data'));
        break;
      }
      const n = Math.min(end, inlineFrom, (Math.floor(pos / BLOCK_SIZE) + 1) * BLOCK_SIZE) - pos;
      parts.push(this.bytes(inode.union * BLOCK_SIZE + pos, n, 'data block'));
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

  /** The entries of a directory, block by block, checked as the kernel's erofs_readdir and erofs_namei read them. */
  readDir(node: ParsedInode): DirEntry[] {
    const size = Number(node.inode.size);
    const entries: DirEntry[] = [];
    for (let blockStart = 0; blockStart < size; blockStart += BLOCK_SIZE) {
      const length = Math.min(BLOCK_SIZE, size - blockStart);
      const block = this.data(node, blockStart, length);
      const where = (pos: number): number => this.#dataOffset(node, blockStart + pos);
      if (length < DIRENT_SIZE) throw new ImageError(where(0), `directory ${node.nid}: block of ${length} bytes holds no entry`);
      const firstNameOffset = block.readUInt16LE(8);
      if (firstNameOffset < DIRENT_SIZE || firstNameOffset % DIRENT_SIZE !== 0 || firstNameOffset > length) {
        throw new ImageError(where(8), `directory ${node.nid}: invalid first name offset ${firstNameOffset}`);
      }
      const count = firstNameOffset / DIRENT_SIZE;
      let previous: string | undefined;
      for (let i = 0; i < count; i++) {
        const base = i * DIRENT_SIZE;
        const nameOffset = block.readUInt16LE(base + 8);
        const nameEnd = i + 1 < count ? block.readUInt16LE(base + DIRENT_SIZE + 8) : length;
        if (nameOffset < firstNameOffset || nameEnd > length || nameEnd <= nameOffset) {
          throw new ImageError(where(base + 8), `directory ${node.nid}: name offsets ${nameOffset}..${nameEnd} out of order or outside the block`);
        }
        let nameLength = nameEnd - nameOffset;
        if (i + 1 === count) {
          // The last name runs to the end of the block or to the first NUL (erofs_readdir: strnlen).
          const nul = block.indexOf(0, nameOffset);
          if (nul >= 0 && nul < nameEnd) {
            for (let j = nul; j < nameEnd; j++) {
              if (block[j] !== 0) throw new ImageError(where(j), `directory ${node.nid}: garbage after the last name`);
            }
            nameLength = nul - nameOffset;
          }
        }
        if (nameLength === 0 || nameLength > EROFS_NAME_LEN) throw new ImageError(where(nameOffset), `directory ${node.nid}: name of ${nameLength} bytes`);
        for (let j = nameOffset; j < nameOffset + nameLength; j++) {
          if (block[j] === 0 || block[j] === 0x2f) throw new ImageError(where(j), `directory ${node.nid}: name contains NUL or '/'`);
        }
        const name = block.toString('latin1', nameOffset, nameOffset + nameLength);
        // erofs_namei binary-searches names: they must be strictly ascending within the directory.
        if (previous !== undefined && !(previous < name)) throw new ImageError(where(nameOffset), `directory ${node.nid}: names not in ascending order`);
        const last = entries[entries.length - 1];
        if (previous === undefined && last !== undefined && !(last.name < name)) throw new ImageError(where(nameOffset), `directory ${node.nid}: names not in ascending order across blocks`);
        previous = name;
        const nidLow = block.readUInt32LE(base);
        const nidHigh = block.readUInt32LE(base + 4);
        const fileType = block[base + 10]!;
        if (block[base + 11] !== 0) throw new ImageError(where(base + 11), `directory ${node.nid}: dirent reserved byte set`);
        if (fileType === FT_UNKNOWN || fileType > 7) throw new ImageError(where(base + 10), `directory ${node.nid}: invalid file type ${fileType}`);
        const nid = nidHigh * 2 ** 32 + nidLow;
        if (nidHigh >= 2 ** 16 || this.#metaStart + nid * 32 + INODE_COMPACT_SIZE > this.#size) {
          throw new ImageError(where(base), `directory ${node.nid}: entry ${printable(name)} points to nid ${nid} outside the image`);
        }
        entries.push({ name, nid, fileType });
      }
    }
    return entries;
  }

  /** The image offset of byte `pos` of a flat inode's data. */
  #dataOffset(node: ParsedInode, pos: number): number {
    const size = Number(node.inode.size);
    const nblocks = Math.ceil(size / BLOCK_SIZE);
    const inlineFrom = node.inode.layout === LAYOUT_FLAT_INLINE ? Math.max(nblocks - 1, 0) * BLOCK_SIZE : size;
    return pos >= inlineFrom ? node.offset + node.headSize + (pos - inlineFrom) : node.inode.union * BLOCK_SIZE + pos;
  }
}

/** The bit of the inode's xattr name filter (bloom filter) that stands for the name `index` + `suffix`. */
function filterBit(index: number, suffix: Uint8Array): number {
  return xxh32(suffix, (XATTR_FILTER_SEED + index) >>> 0) & (XATTR_FILTER_BITS - 1);
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
  if (fileTypeOfMode(target.inode.mode) !== entry.fileType) {
    throw new ImageError(directoryOffset, `entry ${printable(entry.name)} has file type ${entry.fileType} but inode ${target.nid} is of type ${fileTypeOfMode(target.inode.mode)}`);
  }
}
