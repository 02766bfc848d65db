// A signed trust update: "image D (size S) is trusted at version N". Made by the key holder when it builds the
// image (sealroot trust sign), it travels with the image and anyone may apply it (sealroot trust apply/sync): the
// file holds no secret and no per-machine value. What makes it count is the TPM: each signature approves one exact
// NV write (PolicyCpHash) guarded by "the slot holds an older version" (PolicyNV); see policies.ts.
//
// One authorization per (slot count, slot): the applier picks the oldest slot of the machine's set, and machines
// may have been installed with different slot counts. The file is attacker-writable like everything on the disk:
// it is parsed strictly and bounded, every policy is recomputed from (version, size, digest, index, slots, slot)
// and must equal the one in the file, and every signature is checked in software before the TPM sees it.
import { type PolicyKey, type Signer, verifyRaw } from '../tpm2/policy-key.ts';
import { formatDigest, parseDigest, DigestSyntaxError } from '../verity/digest.ts';
import { comparePolicy, TRUST_POLICY_REF, updatePolicy } from './policies.ts';
import { checkSlotCount, checkVersion, MAX_SLOTS, MIN_SLOTS, TrustRecordError, type TrustedImage } from './record.ts';

export const UPDATE_FORMAT = 'sealroot-trust-update/1';
/** A file signed for every slot count with RSA-4096 is ~40 KiB of hex; anything much larger is not ours. */
export const MAX_UPDATE_BYTES = 256 * 1024;
/** The slot counts `trust sign` covers unless told: the default (2) and the next sizes a fleet is likely to choose. */
export const DEFAULT_SIGNED_SLOT_COUNTS: readonly number[] = [2, 3, 4];

export interface SignedPolicy {
  policy: Buffer;
  /** Raw signature (PKCS#1 v1.5 or P1363) over H(policy || TRUST_POLICY_REF)'s message, as approvals.json stores them. */
  signature: Buffer;
}

export interface SlotWrite extends SignedPolicy {
  slots: number;
  slot: number;
}

export interface TrustUpdate {
  image: TrustedImage;
  nvIndex: number;
  /** The policy key's Name (hex in the file), for the reader's diagnostics: the applier's own key decides. */
  policyKeyName: Buffer;
  compare: SignedPolicy;
  writes: SlotWrite[];
}

export class UpdateFileError extends Error {
  readonly path: string | undefined;

  constructor(message: string, path?: string) {
    super(message);
    this.name = 'UpdateFileError';
    this.path = path;
  }
}

function signPolicy(signer: Signer, policy: Buffer): SignedPolicy {
  return { policy, signature: signer.signRaw(Buffer.concat([policy, TRUST_POLICY_REF])) };
}

export function signUpdate(signer: Signer, image: TrustedImage, nvIndex: number, slotCounts: readonly number[] = DEFAULT_SIGNED_SLOT_COUNTS): TrustUpdate {
  checkVersion(image.version);
  const writes: SlotWrite[] = [];
  for (const slots of [...new Set(slotCounts)].sort((a, b) => a - b)) {
    checkSlotCount(slots);
    for (let slot = 0; slot < slots; slot++) {
      const policy = updatePolicy(signer.policyKey, { nvIndex, algorithm: image.digest.algorithm, slots, slot }, image);
      writes.push({ slots, slot, ...signPolicy(signer, policy) });
    }
  }
  return { image, nvIndex, policyKeyName: signer.policyKey.name, compare: signPolicy(signer, comparePolicy()), writes };
}

export function serializeUpdate(update: TrustUpdate): string {
  const signed = (entry: SignedPolicy) => ({ policy: entry.policy.toString('hex'), signature: entry.signature.toString('hex') });
  return `${JSON.stringify({
    format: UPDATE_FORMAT,
    version: update.image.version,
    size: update.image.size,
    digest: formatDigest(update.image.digest),
    nvIndex: `0x${update.nvIndex.toString(16).padStart(8, '0')}`,
    policyKey: update.policyKeyName.toString('hex'),
    compare: signed(update.compare),
    writes: update.writes.map((write) => ({ slots: write.slots, slot: write.slot, ...signed(write) })),
  }, null, 2)}\n`;
}

/** Strict parse; throws UpdateFileError naming the file and what is wrong. Signatures are not checked here. */
export function parseUpdate(text: string, file?: string): TrustUpdate {
  const bad = (why: string) => new UpdateFileError(`not a valid trust update: ${why}`, file);
  if (text.length > MAX_UPDATE_BYTES) throw bad(`${text.length} bytes (at most ${MAX_UPDATE_BYTES})`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw bad(`not JSON (${(error as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad('not an object');
  const record = json as Record<string, unknown>;
  if (record.format !== UPDATE_FORMAT) throw bad(`format is not ${UPDATE_FORMAT}`);
  const hex = (value: unknown, what: string, bytes?: number): Buffer => {
    if (typeof value !== 'string' || !/^([0-9a-f]{2})+$/.test(value) || value.length > 2048 || (bytes !== undefined && value.length !== bytes * 2)) throw bad(`bad ${what}`);
    return Buffer.from(value, 'hex');
  };
  const whole = (value: unknown, what: string): number => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw bad(`bad ${what}`);
    return value;
  };
  const signed = (value: unknown, what: string): SignedPolicy => {
    if (typeof value !== 'object' || value === null) throw bad(`bad ${what}`);
    const entry = value as Record<string, unknown>;
    return { policy: hex(entry.policy, `${what} policy`, 32), signature: hex(entry.signature, `${what} signature`) };
  };
  let image: TrustedImage;
  try {
    if (typeof record.digest !== 'string') throw bad('bad digest');
    image = { version: checkVersion(whole(record.version, 'version')), size: whole(record.size, 'size'), digest: parseDigest(record.digest) };
    if (image.size <= 0) throw bad('bad size');
  } catch (error) {
    if (error instanceof TrustRecordError || error instanceof DigestSyntaxError) throw bad(error.message);
    throw error;
  }
  if (typeof record.nvIndex !== 'string' || !/^0x[0-9a-f]{8}$/.test(record.nvIndex)) throw bad('bad nvIndex');
  if (!Array.isArray(record.writes) || record.writes.length === 0 || record.writes.length > MAX_SLOTS * MAX_SLOTS) throw bad('bad writes list');
  const writes = record.writes.map((value: unknown, i): SlotWrite => {
    const entry = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
    const slots = whole(entry.slots, `write ${i} slots`);
    const slot = whole(entry.slot, `write ${i} slot`);
    if (slots < MIN_SLOTS || slots > MAX_SLOTS || slot < 0 || slot >= slots) throw bad(`write ${i}: slot ${slot} of ${slots}`);
    return { slots, slot, ...signed(value, `write ${i}`) };
  });
  return {
    image, nvIndex: Number.parseInt(record.nvIndex.slice(2), 16), policyKeyName: hex(record.policyKey, 'policyKey'),
    compare: signed(record.compare, 'compare'), writes,
  };
}

/** The update's compare approval is signed by `policyKey` (a first, cheap check that the file is the key holder's). */
export function checkSigner(update: TrustUpdate, policyKey: PolicyKey, file?: string): void {
  if (!update.compare.policy.equals(comparePolicy()) || !verifyRaw(policyKey, approvalMessage(update.compare.policy), update.compare.signature)) {
    throw new UpdateFileError(`version ${update.image.version} (${formatDigest(update.image.digest)}) is not signed by the policy key (key name in the file: ${update.policyKeyName.toString('hex')}, ours: ${policyKey.name.toString('hex')})`, file);
  }
}

/** The message TPM2_VerifySignature checks for PolicyAuthorize: H(policy || policyRef) is its digest. */
export function approvalMessage(policy: Buffer): Buffer {
  return Buffer.concat([policy, TRUST_POLICY_REF]);
}

/**
 * Checks, in software and before the TPM sees anything, that the update is signed by `policyKey` for `slots`
 * slots: the compare approval, and the write for every slot of that count with its policy recomputed.
 * Returns the writes for that slot count, by slot.
 */
export function checkUpdate(update: TrustUpdate, policyKey: PolicyKey, slots: number, file?: string): SlotWrite[] {
  const refuse = (why: string) => new UpdateFileError(why, file);
  const valid = (entry: SignedPolicy) => verifyRaw(policyKey, approvalMessage(entry.policy), entry.signature);
  checkSigner(update, policyKey, file);
  const writes: SlotWrite[] = [];
  for (let slot = 0; slot < slots; slot++) {
    const write = update.writes.find((entry) => entry.slots === slots && entry.slot === slot);
    if (write === undefined) throw refuse(`version ${update.image.version} was not signed for a set of ${slots} slots (signed for ${[...new Set(update.writes.map((entry) => entry.slots))].join(', ')})`);
    const expected = updatePolicy(policyKey, { nvIndex: update.nvIndex, algorithm: update.image.digest.algorithm, slots, slot }, update.image);
    if (!write.policy.equals(expected) || !valid(write)) throw refuse(`version ${update.image.version}: the write for slot ${slot} of ${slots} is not the one the policy key signed`);
    writes.push(write);
  }
  return writes;
}
