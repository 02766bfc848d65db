// The fs-verity file digest, computed in userspace with the kernel's exact semantics
// (Documentation/filesystems/fsverity.rst "File digest computation" and "Merkle tree"; fsverity-utils lib/compute_digest.c).
// Streaming: memory is one pending data block plus one pending block per tree level, whatever the file size.
import { hash } from '../crypto/primitives.ts';
import { DIGEST_SIZES, NODE_HASHING, type HashAlgorithm } from './digest.ts';
import { defaultBlockHasher, type BlockHashing } from './blocks.ts';

/** fsverity_descriptor.hash_algorithm (include/uapi/linux/fsverity.h FS_VERITY_HASH_ALG_*). */
export const FS_VERITY_ALGORITHM_IDS: Readonly<Record<HashAlgorithm, number>> = { sha256: 1, sha512: 2 };
/** The input block size of each hash's compression function: the salt is zero-padded to a multiple of it. */
const COMPRESSION_BLOCK_SIZES: Readonly<Record<HashAlgorithm, number>> = { sha256: 64, sha512: 128 };

export const DEFAULT_BLOCK_SIZE = 4096;
/** sizeof(fsverity_descriptor.salt). */
export const MAX_SALT_SIZE = 32;
const DESCRIPTOR_SIZE = 256;
/** fsverity-utils parses the block size as an int: the largest power of two it takes. */
const MAX_BLOCK_SIZE = 2 ** 30;

export interface MerkleOptions {
  algorithm: HashAlgorithm;
  /** A power of two holding at least two digests; 4096 unless given (composefs, ostree, bootc all use 4096). */
  blockSize?: number;
  /** At most 32 bytes; none by default. */
  salt?: Uint8Array;
}

export class MerkleParamsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MerkleParamsError';
  }
}

/** Checks the parameters as fsverity-utils does and derives what hashing needs (the padded salt). */
export function blockHashing(options: MerkleOptions): BlockHashing {
  const { algorithm } = options;
  const blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
  const digestSize = DIGEST_SIZES[algorithm];
  if (digestSize === undefined) throw new MerkleParamsError(`unknown hash algorithm '${String(algorithm)}'`);
  if (!Number.isInteger(blockSize) || blockSize < 1 || blockSize > MAX_BLOCK_SIZE || (blockSize & (blockSize - 1)) !== 0) {
    throw new MerkleParamsError(`invalid block size ${blockSize}: must be a power of 2`);
  }
  // A tree block must hold at least two digests or the tree never converges (fsverity-utils: "too small").
  if (blockSize < 2 * digestSize) throw new MerkleParamsError(`block size ${blockSize} too small for ${algorithm}`);
  const salt = options.salt ?? new Uint8Array(0);
  if (salt.length > MAX_SALT_SIZE) throw new MerkleParamsError(`salt of ${salt.length} bytes: at most ${MAX_SALT_SIZE}`);
  // fsverity.rst: "the salt is zero-padded to the closest multiple of the input size of the hash algorithm's
  // compression function ... and prepended to every data or Merkle tree block that is hashed".
  const unit = COMPRESSION_BLOCK_SIZES[algorithm];
  const paddedSalt = new Uint8Array(Math.ceil(salt.length / unit) * unit);
  paddedSalt.set(salt);
  return { algorithm, blockSize, digestSize, paddedSalt };
}

interface Level {
  block: Buffer;
  fill: number;
  /** Digests ever appended to this level. */
  count: number;
}

/**
 * Streaming fs-verity digest. Feed the file's bytes with update() (any chunking), or whole blocks already hashed
 * elsewhere (worker threads) with addBlockDigests(); digest() returns H(fsverity_descriptor).
 */
export class FsVerityHasher {
  readonly algorithm: HashAlgorithm;
  readonly blockSize: number;
  readonly salt: Uint8Array;
  readonly #hashing: BlockHashing;
  readonly #hashDataBlocks = defaultBlockHasher();
  readonly #pending: Buffer;
  #pendingLength = 0;
  #dataSize = 0;
  readonly #levels: Level[] = [];
  #finished = false;

  constructor(options: MerkleOptions) {
    this.#hashing = blockHashing(options);
    this.algorithm = options.algorithm;
    this.blockSize = this.#hashing.blockSize;
    this.salt = Uint8Array.from(options.salt ?? []);
    this.#pending = Buffer.alloc(this.blockSize);
  }

  /** Bytes of file data seen so far. */
  get size(): number {
    return this.#dataSize;
  }

  update(chunk: Uint8Array): void {
    this.#checkOpen();
    const { blockSize } = this;
    let offset = 0;
    if (this.#pendingLength > 0) {
      const take = Math.min(blockSize - this.#pendingLength, chunk.length);
      this.#pending.set(chunk.subarray(0, take), this.#pendingLength);
      this.#pendingLength += take;
      offset = take;
      if (this.#pendingLength === blockSize) {
        this.#addLeaves(this.#hashDataBlocks(NODE_HASHING, this.#hashing, this.#pending));
        this.#pendingLength = 0;
      }
    }
    const whole = Math.floor((chunk.length - offset) / blockSize) * blockSize;
    if (whole > 0) {
      this.#addLeaves(this.#hashDataBlocks(NODE_HASHING, this.#hashing, chunk.subarray(offset, offset + whole)));
      offset += whole;
    }
    if (offset < chunk.length) {
      this.#pending.set(chunk.subarray(offset), 0);
      this.#pendingLength = chunk.length - offset;
    }
    this.#dataSize += chunk.length;
  }

  /**
   * Adds the digests of consecutive data blocks hashed elsewhere with hashDataBlocks() and the same parameters,
   * covering `dataLength` bytes. Only at a block boundary; a partial (zero-padded) block must be the file's last.
   */
  addBlockDigests(digests: Uint8Array, dataLength: number): void {
    this.#checkOpen();
    const { blockSize } = this;
    const blocks = Math.ceil(dataLength / blockSize);
    if (this.#pendingLength !== 0 || this.#dataSize % blockSize !== 0) {
      throw new Error('addBlockDigests: the data so far does not end at a block boundary');
    }
    if (digests.length !== blocks * this.#hashing.digestSize) {
      throw new Error(`addBlockDigests: ${digests.length} bytes of digests for ${blocks} blocks`);
    }
    this.#addLeaves(digests);
    this.#dataSize += dataLength;
  }

  /** The root hash of the Merkle tree: all zeros for an empty file, the data block's hash for a one-block file. */
  rootHash(): Buffer {
    this.#finish();
    const { digestSize } = this.#hashing;
    if (this.#dataSize === 0) return Buffer.alloc(digestSize);
    for (let index = 0; ; index++) {
      const level = this.#levels[index]!;
      if (level.count === 1) return Buffer.from(level.block.subarray(0, digestSize));
      if (level.fill > 0) this.#flush(index);
    }
  }

  /** The fs-verity file digest: the hash of the 256-byte fsverity_descriptor. Ends the hasher. */
  digest(): Buffer {
    const root = this.rootHash();
    const descriptor = Buffer.alloc(DESCRIPTOR_SIZE);
    descriptor.writeUInt8(1, 0); // version
    descriptor.writeUInt8(FS_VERITY_ALGORITHM_IDS[this.algorithm], 1);
    descriptor.writeUInt8(Math.log2(this.blockSize), 2); // log_blocksize
    descriptor.writeUInt8(this.salt.length, 3); // salt_size; then sig_size (le32) = 0
    descriptor.writeBigUInt64LE(BigInt(this.#dataSize), 8);
    descriptor.set(root, 16); // root_hash[64]
    descriptor.set(this.salt, 80); // salt[32]; reserved[144] stays zero
    return hash(this.algorithm, descriptor);
  }

  #checkOpen(): void {
    if (this.#finished) throw new Error('FsVerityHasher: already finished');
  }

  #finish(): void {
    this.#checkOpen();
    this.#finished = true;
    if (this.#pendingLength > 0) {
      this.#pending.fill(0, this.#pendingLength);
      this.#addLeaves(this.#hashDataBlocks(NODE_HASHING, this.#hashing, this.#pending));
      this.#pendingLength = 0;
    }
  }

  /** Appends data-block digests to level 0, a block's worth at a time (one set() per block, not per digest). */
  #addLeaves(digests: Uint8Array): void {
    const { digestSize } = this.#hashing;
    for (let offset = 0; offset < digests.length;) {
      const level = this.#level(0);
      const take = Math.min(this.blockSize - level.fill, digests.length - offset);
      level.block.set(digests.subarray(offset, offset + take), level.fill);
      level.fill += take;
      level.count += take / digestSize;
      offset += take;
      if (level.fill === this.blockSize) this.#flush(0);
    }
  }

  #level(index: number): Level {
    let level = this.#levels[index];
    if (level === undefined) {
      level = { block: Buffer.alloc(this.blockSize), fill: 0, count: 0 };
      this.#levels[index] = level;
    }
    return level;
  }

  #append(index: number, digest: Uint8Array): void {
    const level = this.#level(index);
    level.block.set(digest, level.fill);
    level.fill += digest.length;
    level.count += 1;
    if (level.fill === this.blockSize) this.#flush(index);
  }

  /** Hashes the level's pending block (zero-padded) into the level above. */
  #flush(index: number): void {
    const level = this.#levels[index]!;
    level.block.fill(0, level.fill);
    level.fill = 0;
    this.#append(index + 1, this.#hashDataBlocks(NODE_HASHING, this.#hashing, level.block));
  }
}

/** The fs-verity digest of a whole buffer (tests, small files). */
export function fsVerityDigest(data: Uint8Array, options: MerkleOptions): Buffer {
  const hasher = new FsVerityHasher(options);
  hasher.update(data);
  return hasher.digest();
}
