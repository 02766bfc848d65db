// Pure: the trusted set as the TPM's NV index holds it. A fixed number of slots (chosen at first install), each
// one trusted image: the version the key holder signed it for, its size and its fs-verity digest. An update writes
// one slot (the oldest), so the set keeps the newest versions: the current deployment and the previous one(s).
//
//   offset 0  u8  format (1)
//          1  u8  digest algorithm, fs-verity numbering (1 = sha256, 2 = sha512)
//          2  u8  slot count K
//          3  u8  0
//          4  K slots of: u64 version | u64 image size | digest (32 or 64 bytes)     (big-endian)
//
// Big-endian versions because TPM2_PolicyNV compares the index's bytes with its operand as big-endian unsigned
// integers (Part 3 §23.9): "slot version < N" is one PolicyNV over the slot's first 8 bytes. Size 0 and a zero
// digest mark an empty slot; its version is a floor, not an image: only an update of a higher version fills it. The
// first install at version N writes its empty slots with floor N - 1, so that a machine installed with a recent
// release never takes an older signed image (a genuine but retired update file) into an empty slot.
import { type Digest, type HashAlgorithm } from '../verity/digest.ts';

export const RECORD_FORMAT = 1;
export const HEADER_BYTES = 4;
export const MIN_SLOTS = 2;
/** 4 + 6 * 80 = 484 bytes with SHA-512: one NV_Read on any TPM (TPM_PT_NV_BUFFER_MAX is at least 512 in practice). */
export const MAX_SLOTS = 6;
export const DEFAULT_SLOTS = 2;
/** Versions are u64 in the TPM; sealroot keeps them exact in a JavaScript number. */
export const MAX_VERSION = Number.MAX_SAFE_INTEGER;

const ALGORITHM_IDS: Record<HashAlgorithm, number> = { sha256: 1, sha512: 2 };
const DIGEST_BYTES: Record<HashAlgorithm, number> = { sha256: 32, sha512: 64 };

export interface TrustedImage {
  version: number;
  /** The image's size in bytes (the decompressed size for a zstd image): bounds the copy before the digest is known. */
  size: number;
  digest: Digest;
}

export interface TrustedSet {
  algorithm: HashAlgorithm;
  /** One entry per slot; undefined: an empty slot. */
  slots: (TrustedImage | undefined)[];
  /** The version the empty slots hold (only a higher one fills them); absent: 0. */
  floor?: number;
}

export class TrustRecordError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TrustRecordError';
  }
}

export function checkSlotCount(count: number): number {
  if (!Number.isInteger(count) || count < MIN_SLOTS || count > MAX_SLOTS) throw new TrustRecordError(`a trusted set has ${MIN_SLOTS} to ${MAX_SLOTS} slots, not ${count}`);
  return count;
}

export function checkVersion(version: number): number {
  if (!Number.isSafeInteger(version) || version < 1 || version > MAX_VERSION) throw new TrustRecordError(`a version is a whole number from 1 to ${MAX_VERSION}, not ${version}`);
  return version;
}

export function slotBytes(algorithm: HashAlgorithm): number {
  return 16 + DIGEST_BYTES[algorithm];
}

export function slotOffset(algorithm: HashAlgorithm, slot: number): number {
  return HEADER_BYTES + slot * slotBytes(algorithm);
}

export function recordSize(algorithm: HashAlgorithm, slots: number): number {
  return HEADER_BYTES + checkSlotCount(slots) * slotBytes(algorithm);
}

/** The 8 big-endian bytes PolicyNV compares a slot's version with. */
export function versionBytes(version: number): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64BE(BigInt(version));
  return bytes;
}

/** One slot's bytes: what an update writes at slotOffset(). */
export function encodeSlot(image: TrustedImage): Buffer {
  checkVersion(image.version);
  if (!Number.isSafeInteger(image.size) || image.size <= 0) throw new TrustRecordError(`an image size is a positive whole number, not ${image.size}`);
  if (image.digest.bytes.length !== DIGEST_BYTES[image.digest.algorithm]) throw new TrustRecordError('digest of the wrong length');
  const size = Buffer.alloc(8);
  size.writeBigUInt64BE(BigInt(image.size));
  return Buffer.concat([versionBytes(image.version), size, image.digest.bytes]);
}

/** The 4 header bytes: every update's policy requires them (PolicyNV EQ), so an update fits one format and layout. */
export function encodeHeader(algorithm: HashAlgorithm, slots: number): Buffer {
  return Buffer.from([RECORD_FORMAT, ALGORITHM_IDS[algorithm], checkSlotCount(slots), 0]);
}

export function encodeRecord(set: TrustedSet): Buffer {
  const header = encodeHeader(set.algorithm, set.slots.length);
  const floor = set.floor ?? 0;
  if (floor !== 0) checkVersion(floor);
  const slots = set.slots.map((image) => {
    if (image === undefined) return Buffer.concat([versionBytes(floor), Buffer.alloc(slotBytes(set.algorithm) - 8)]);
    if (image.digest.algorithm !== set.algorithm) throw new TrustRecordError(`a ${image.digest.algorithm} digest in a ${set.algorithm} set`);
    return encodeSlot(image);
  });
  return Buffer.concat([header, ...slots]);
}

/** Strict: anything but a well-formed record (as sealroot writes it) is refused, never half-read. */
export function decodeRecord(bytes: Buffer): TrustedSet {
  if (bytes.length < HEADER_BYTES) throw new TrustRecordError(`the record has ${bytes.length} bytes`);
  if (bytes[0] !== RECORD_FORMAT) throw new TrustRecordError(`record format ${bytes[0]} (this sealroot reads format ${RECORD_FORMAT})`);
  const algorithm = (Object.keys(ALGORITHM_IDS) as HashAlgorithm[]).find((name) => ALGORITHM_IDS[name] === bytes[1]);
  if (algorithm === undefined) throw new TrustRecordError(`unknown digest algorithm ${bytes[1]}`);
  const count = bytes[2]!;
  if (count < MIN_SLOTS || count > MAX_SLOTS || bytes[3] !== 0) throw new TrustRecordError(`bad header (slots ${count}, reserved ${bytes[3]})`);
  if (bytes.length !== recordSize(algorithm, count)) throw new TrustRecordError(`${bytes.length} bytes for ${count} ${algorithm} slots (expected ${recordSize(algorithm, count)})`);
  const slots: (TrustedImage | undefined)[] = [];
  let floor = 0;
  for (let slot = 0; slot < count; slot++) {
    const at = slotOffset(algorithm, slot);
    const version = bytes.readBigUInt64BE(at);
    const size = bytes.readBigUInt64BE(at + 8);
    const digest = Buffer.from(bytes.subarray(at + 16, at + slotBytes(algorithm)));
    if (version > BigInt(MAX_VERSION)) throw new TrustRecordError(`slot ${slot}: version ${version} out of range`);
    if (size === 0n) {
      if (digest.some((byte) => byte !== 0)) throw new TrustRecordError(`slot ${slot} is empty (size 0) but its digest is not zero`);
      floor = Math.max(floor, Number(version));
      slots.push(undefined);
      continue;
    }
    if (version === 0n || size > BigInt(Number.MAX_SAFE_INTEGER)) throw new TrustRecordError(`slot ${slot}: version ${version}, size ${size} out of range`);
    slots.push({ version: Number(version), size: Number(size), digest: { algorithm, bytes: digest } });
  }
  const versions = slots.filter((image) => image !== undefined).map((image) => image.version);
  if (new Set(versions).size !== versions.length) throw new TrustRecordError('two slots hold the same version');
  return { algorithm, slots, ...(floor === 0 ? {} : { floor }) };
}

/** The trusted images, newest first. */
export function members(set: TrustedSet): TrustedImage[] {
  return set.slots.filter((image): image is TrustedImage => image !== undefined).sort((a, b) => b.version - a.version);
}

/** The slot an update replaces: the one with the lowest version (an empty slot's floor is below every image's). */
export function oldestSlot(versions: readonly number[]): number {
  let chosen = 0;
  versions.forEach((version, slot) => {
    if (version < versions[chosen]!) chosen = slot;
  });
  return chosen;
}

export function emptySet(algorithm: HashAlgorithm, slots: number): TrustedSet {
  return { algorithm, slots: new Array<TrustedImage | undefined>(checkSlotCount(slots)).fill(undefined) };
}
