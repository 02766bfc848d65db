// The trusted set in the TPM: checking the index is ours (by Name), the PCR-bound read, the first install
// (one-time PolicySigned with the private key at hand) and applying a signed update (no key). Policies: policies.ts.
import type { Approval } from '../tpm2/approvals.ts';
import { approvalTicket, authorizeRead, checkBanks, NoApprovalError, withPolicySession } from '../tpm2/approved-policy.ts';
import { type Tpm } from '../tpm2/client.ts';
import { TPM_CC, TPM_EO, TPMA_NV } from '../tpm2/constants.ts';
import { type PcrSelection, withPcr } from '../tpm2/pcr-selection.ts';
import { policySigned, policySignedMessage, ZERO_POLICY } from '../tpm2/policy.ts';
import type { PolicyKey, Signer } from '../tpm2/policy-key.ts';
import { RC, TpmError } from '../tpm2/response-codes.ts';
import type { VerifiedTicket } from '../tpm2/structures.ts';
import { formatDigest, type HashAlgorithm } from '../verity/digest.ts';
import { PROVISION_REF, TRUST_POLICY_REF, trustIndexName, trustIndexPublic, writeCpHash } from './policies.ts';
import {
  decodeRecord, emptySet, encodeHeader, encodeRecord, encodeSlot, MAX_SLOTS, MIN_SLOTS, oldestSlot, recordSize, slotBytes, slotOffset, type TrustedImage,
  RECORD_FORMAT, type TrustedSet, versionBytes,
} from './record.ts';
import { checkSigner, checkUpdate, type TrustUpdate } from './update-file.ts';

export class TrustError extends Error {
  /** The update file concerned, when there is one (the CLI's line names it: `trust apply` takes several). */
  readonly path: string | undefined;

  constructor(message: string, path?: string) {
    super(message);
    this.name = 'TrustError';
    this.path = path;
  }
}

/** The TPM itself refused an update (TPM2_PolicyNV: no slot holds an older version): replay or rollback. */
export class UpdateRefusedError extends TrustError {
  constructor(message: string, path?: string) {
    super(message, path);
    this.name = 'UpdateRefusedError';
  }
}

/**
 * TPM2_PolicyNV's operandB is a TPM2B_OPERAND, i.e. a TPM2B_DIGEST: at most the TPM's largest digest (Part 2
 * §10.4.3; swtpm with SHA-512 takes 64 bytes, a SHA-256-only TPM 32). A slot (48 or 80 bytes) is compared in pieces.
 */
const MAX_OPERAND_BYTES = 32;

export interface IndexOptions {
  nvIndex: number;
  policyKey: PolicyKey;
}

export type IndexState = { state: 'absent' } | { state: 'ours'; written: boolean; dataSize: number } | { state: 'foreign'; why: string };

/** Every record size sealroot can define: the Name depends on the size only, not on how it splits into slots. */
function possibleSizes(): number[] {
  const sizes = new Set<number>();
  for (const algorithm of ['sha256', 'sha512'] as const) {
    for (let slots = MIN_SLOTS; slots <= MAX_SLOTS; slots++) sizes.add(recordSize(algorithm, slots));
  }
  return [...sizes];
}

/** Absent, ours (its Name is one sealroot computes for this policy key), or anything else: refused. */
export async function inspectTrustIndex(tpm: Tpm, options: IndexOptions): Promise<IndexState> {
  let found: Awaited<ReturnType<Tpm['nvReadPublic']>>;
  try {
    found = await tpm.nvReadPublic(options.nvIndex);
  } catch (error) {
    if (error instanceof TpmError && error.base === RC.HANDLE) return { state: 'absent' };
    throw error;
  }
  // The Name is the hash of the whole public area: only the size and WRITTEN bit the TPM reports can match, so
  // only that one expected Name is computed (a public area altered on its way here matches none).
  const pub = found.public;
  const dataSize = pub.dataSize;
  const written = (pub.attributes & TPMA_NV.WRITTEN) !== 0;
  if (possibleSizes().includes(dataSize) && found.name.equals(trustIndexName(options.nvIndex, options.policyKey, dataSize, written))) {
    return { state: 'ours', written, dataSize };
  }
  return {
    state: 'foreign',
    why: `name ${found.name.toString('hex')} is not the name of sealroot's trusted-set index for this policy key `
      + `(it has attributes 0x${pub.attributes.toString(16)}, authPolicy ${pub.authPolicy.toString('hex') || 'empty'}, size ${pub.dataSize})`,
  };
}

const where = (nvIndex: number) => `NV index 0x${nvIndex.toString(16)}`;

async function writtenIndex(tpm: Tpm, options: IndexOptions): Promise<number> {
  const index = await inspectTrustIndex(tpm, options);
  if (index.state === 'absent') throw new TrustError(`${where(options.nvIndex)} is not defined (not provisioned on this TPM: sealroot provision)`);
  if (index.state === 'foreign') throw new TrustError(`${where(options.nvIndex)} is not trusted: ${index.why}`);
  if (!index.written) throw new TrustError(`${where(options.nvIndex)} was defined but never written (an interrupted or attacker's definition: sealroot provision)`);
  return index.dataSize;
}

export interface ReadOptions extends IndexOptions {
  selection: PcrSelection;
  capPcr: number;
  approvals: readonly Approval[];
}

/** The authenticated read: Name check, PolicyPCR + PolicyCommandCode(NV_Read) + PolicyAuthorize, NV_Read, strict decode. */
export async function readTrustedSet(tpm: Tpm, options: ReadOptions): Promise<TrustedSet> {
  const dataSize = await writtenIndex(tpm, options);
  let bytes: Buffer;
  try {
    bytes = await withPolicySession(tpm, async ({ handle }) => {
      await tpm.policyPcr(handle, withPcr(options.selection, options.capPcr));
      await tpm.policyCommandCode(handle, TPM_CC.NV_Read);
      await authorizeRead(tpm, handle, options.approvals, options.policyKey, TRUST_POLICY_REF);
      return tpm.nvRead(options.nvIndex, dataSize, handle, { endSession: true });
    }, { endedByBody: true });
  } catch (error) {
    // The banks are asked only when no approval matched (one TPM command less on every boot): a selected bank the
    // TPM has not allocated shows there (PolicyPCR accepts it), and checkBanks names it. A read that succeeds needs no
    // check: an approval is signed over a value for every PCR of the selection (makeReadApproval), and a TPM hashes no
    // value of an unallocated bank into PolicyPCR (Part 3 §23.7; see checkBanks), so no approval matches such a selection.
    if (error instanceof NoApprovalError) await checkBanks(tpm, options.selection);
    throw error;
  }
  if (bytes.length !== dataSize) throw new TrustError(`${where(options.nvIndex)}: NV_Read returned ${bytes.length} bytes, not ${dataSize}`);
  try {
    return decodeRecord(bytes);
  } catch (error) {
    // Only the key holder can have written these bytes: a malformed record is a bug or another format, never trusted.
    throw new TrustError(`${where(options.nvIndex)}: ${(error as Error).message}`);
  }
}

export interface ProvisionOptions extends IndexOptions {
  signer: Signer;
  slots: number;
  ownerAuth?: Buffer;
  log?: (message: string) => void;
}

/**
 * First install: defines the index (owner auth) if absent and writes a set holding `image` alone, through a
 * one-time PolicySigned over this session's nonce and this exact write (not replayable, not stored). An index that
 * is already written, or not ours, is refused: updates go through signed update files.
 */
export async function provisionTrustedSet(tpm: Tpm, image: TrustedImage, options: ProvisionOptions): Promise<TrustedSet> {
  const { signer, nvIndex } = options;
  if (!signer.policyKey.name.equals(options.policyKey.name)) throw new TrustError('the signing key is not the private half of the policy key');
  const algorithm: HashAlgorithm = image.digest.algorithm;
  const dataSize = recordSize(algorithm, options.slots);
  const index = await inspectTrustIndex(tpm, options);
  if (index.state === 'foreign') throw new TrustError(`${where(nvIndex)} exists and is not sealroot's for this policy key (${index.why}); refusing to touch it`);
  if (index.state === 'ours' && index.written) throw new TrustError(`${where(nvIndex)} is already provisioned: trust a new image with a signed update (sealroot trust sign / trust apply)`);
  if (index.state === 'ours' && index.dataSize !== dataSize) throw new TrustError(`${where(nvIndex)} is defined for ${index.dataSize} bytes, not ${dataSize} (${options.slots} ${algorithm} slots)`);
  if (index.state === 'absent') {
    await tpm.nvDefineSpace(trustIndexPublic(nvIndex, options.policyKey, dataSize, false), options.ownerAuth ?? Buffer.alloc(0));
    options.log?.(`defined ${where(nvIndex)} (${dataSize} bytes: ${options.slots} ${algorithm} slots; read and write only through policies the key approved)`);
  }
  const set = emptySet(algorithm, options.slots);
  set.slots[0] = image;
  // The empty slots' floor: no signed image older than the first install's may fill them later (record.ts).
  if (image.version > 1) set.floor = image.version - 1;
  const record = encodeRecord(set);
  const name = trustIndexName(nvIndex, options.policyKey, dataSize, false);
  await withPolicySession(tpm, async ({ handle, nonceTpm }) => {
    const cpHash = writeCpHash(name, record, 0);
    const key = await tpm.loadExternal(signer.policyKey.publicArea);
    try {
      await tpm.policySigned(key.handle, handle, nonceTpm, cpHash, PROVISION_REF, signer.sign(policySignedMessage(nonceTpm, 0, cpHash, PROVISION_REF)));
    } finally {
      await tpm.flush(key.handle);
    }
    const approved = policySigned(ZERO_POLICY, signer.policyKey.name, PROVISION_REF);
    const ticket = await approvalTicket(tpm, signer.policyKey, approved, TRUST_POLICY_REF, signer.signRaw(Buffer.concat([approved, TRUST_POLICY_REF])));
    await tpm.policyAuthorize(handle, approved, TRUST_POLICY_REF, signer.policyKey.name, ticket);
    await tpm.nvWrite(nvIndex, record, handle);
  });
  return set;
}

/** A session that satisfies the index's authPolicy for TPM2_PolicyNV (the compare approval), for one PolicyNV. */
async function compareSession(tpm: Tpm, policyKey: PolicyKey, compare: { policy: Buffer; ticket: VerifiedTicket }): Promise<number> {
  const { handle } = await tpm.startPolicySession();
  try {
    await tpm.policyCommandCode(handle, TPM_CC.PolicyNV);
    await tpm.policyAuthorize(handle, compare.policy, TRUST_POLICY_REF, policyKey.name, compare.ticket);
    return handle;
  } catch (error) {
    await flushAfterFailure(tpm, handle);
    throw error;
  }
}

/** Flushes a session after a failure: the first error is the one to report, a failing flush only adds to the log. */
async function flushAfterFailure(tpm: Tpm, handle: number): Promise<void> {
  try {
    await tpm.flush(handle);
  } catch (flushError) {
    process.emitWarning(`cannot flush TPM session 0x${handle.toString(16)}: ${(flushError as Error).message}`);
  }
}

/** One TPM2_PolicyNV on `session`: true when it holds, false when the TPM says the comparison does not. */
async function policyNvHolds(
  tpm: Tpm, nvIndex: number, session: number, policyKey: PolicyKey, compare: { policy: Buffer; ticket: VerifiedTicket },
  operand: Buffer, offset: number, operation: number,
): Promise<boolean> {
  const auth = await compareSession(tpm, policyKey, compare);
  try {
    await tpm.policyNv(nvIndex, session, auth, operand, offset, operation);
    return true;
  } catch (error) {
    if (error instanceof TpmError && error.base === RC.POLICY) return false;
    throw error;
  } finally {
    await tpm.flush(auth);
  }
}

export interface ApplyResult {
  /** 'applied': written into `slot`, replacing `replaced` (0: an empty slot); 'present': already in the set. */
  outcome: 'applied' | 'present';
  slot: number;
  replaced: number;
}

/**
 * Applies a signed update without any key: the update's signatures are checked in software first, then the
 * slots' versions are learnt from the TPM itself (TPM2_PolicyNV comparisons: the running system cannot read the
 * set after the cap, and nothing on disk is trusted for it), the oldest slot is chosen, and the write is authorized
 * by PolicyNV(slot version < N) + PolicyCpHash + PolicyAuthorize(the signed update policy). The TPM refuses it
 * when no slot holds an older version (a replayed or older update): UpdateRefusedError.
 */
export async function applyTrustUpdate(tpm: Tpm, update: TrustUpdate, options: IndexOptions & { file?: string }): Promise<ApplyResult> {
  const { nvIndex, policyKey } = options;
  if (update.nvIndex !== nvIndex) throw new TrustError(`the update is for ${where(update.nvIndex)}, not ${where(nvIndex)}`, options.file);
  const dataSize = await writtenIndex(tpm, options);
  const algorithm = update.image.digest.algorithm;
  const slots = (dataSize - 4) / slotBytes(algorithm);
  if (!Number.isInteger(slots) || slots < MIN_SLOTS || slots > MAX_SLOTS || recordSize(algorithm, slots) !== dataSize) {
    throw new TrustError(`${where(nvIndex)} (${dataSize} bytes) does not hold ${algorithm} digests`, options.file);
  }
  checkSigner(update, policyKey, options.file);
  const compareTicket = await approvalTicket(tpm, policyKey, update.compare.policy, TRUST_POLICY_REF, update.compare.signature);
  const compare = { policy: update.compare.policy, ticket: compareTicket };
  const slotImage = encodeSlot(update.image);

  return withPolicySession(tpm, async ({ handle: probe }) => {
    const holds = (operand: Buffer, offset: number, operation: number) => policyNvHolds(tpm, nvIndex, probe, policyKey, compare, operand, offset, operation);
    const equal = async (offset: number) => {
      for (let at = 0; at < slotImage.length; at += MAX_OPERAND_BYTES) {
        if (!(await holds(slotImage.subarray(at, at + MAX_OPERAND_BYTES), offset + at, TPM_EO.EQ))) return false;
      }
      return true;
    };
    // The record's layout (format, algorithm, slot count): the size alone does not tell it, and the signed write requires it.
    if (!(await holds(encodeHeader(algorithm, slots), 0, TPM_EO.EQ))) {
      throw new TrustError(`${where(nvIndex)} (${dataSize} bytes) does not hold a format ${RECORD_FORMAT} set of ${slots} ${algorithm} slots`, options.file);
    }
    const writes = checkUpdate(update, policyKey, slots, options.file);
    // Already there (same version, size and digest): nothing to write.
    for (let slot = 0; slot < slots; slot++) {
      if (await equal(slotOffset(algorithm, slot))) return { outcome: 'present' as const, slot, replaced: update.image.version };
    }
    // Each slot's version, as far as needed: only slots older than N can take the update; of those, the oldest.
    const versions: number[] = [];
    for (let slot = 0; slot < slots; slot++) {
      const offset = slotOffset(algorithm, slot);
      if (!(await holds(versionBytes(update.image.version), offset, TPM_EO.UNSIGNED_LT))) {
        versions.push(Number.POSITIVE_INFINITY);
        continue;
      }
      // Binary search of the slot's version v in [0, N): the smallest m with v < m is v + 1.
      let low = 0;
      let high = update.image.version - 1;
      while (low < high) {
        const middle = Math.floor((low + high) / 2);
        if (await holds(versionBytes(middle + 1), offset, TPM_EO.UNSIGNED_LT)) high = middle;
        else low = middle + 1;
      }
      versions.push(low);
    }
    if (versions.every((version) => version === Number.POSITIVE_INFINITY)) {
      throw new UpdateRefusedError(`version ${update.image.version} (${formatDigest(update.image.digest)}) is not newer than any version in the trusted set: a replayed or older update`, options.file);
    }
    const slot = oldestSlot(versions);
    const write = writes[slot]!;
    const offset = slotOffset(algorithm, slot);
    // An empty slot (size 0) holds a floor, not a version anyone booted: say "an empty slot".
    const replaced = await holds(Buffer.alloc(8), offset + 8, TPM_EO.EQ) ? 0 : versions[slot]!;
    const ticket = await approvalTicket(tpm, policyKey, write.policy, TRUST_POLICY_REF, write.signature);
    await withPolicySession(tpm, async ({ handle }) => {
      const layoutAuth = await compareSession(tpm, policyKey, compare);
      try {
        await tpm.policyNv(nvIndex, handle, layoutAuth, encodeHeader(algorithm, slots), 0, TPM_EO.EQ);
      } finally {
        await tpm.flush(layoutAuth);
      }
      const auth = await compareSession(tpm, policyKey, compare);
      try {
        await tpm.policyNv(nvIndex, handle, auth, versionBytes(update.image.version), offset, TPM_EO.UNSIGNED_LT);
      } catch (error) {
        if (error instanceof TpmError && error.base === RC.POLICY) throw new UpdateRefusedError(`slot ${slot} no longer holds a version older than ${update.image.version}`, options.file);
        throw error;
      } finally {
        await tpm.flush(auth);
      }
      await tpm.policyCpHash(handle, writeCpHash(trustIndexName(nvIndex, policyKey, dataSize, true), slotImage, offset));
      await tpm.policyAuthorize(handle, write.policy, TRUST_POLICY_REF, policyKey.name, ticket);
      await tpm.nvWrite(nvIndex, slotImage, handle, offset);
    });
    return { outcome: 'applied' as const, slot, replaced };
  });
}
