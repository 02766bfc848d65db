// The TPM mechanics of policies approved (signed) offline by the policy key K_pcr: policy sessions, satisfying
// PolicyAuthorize with a signed approval (VerifySignature -> ticket), PCR-bound read approvals, and the cap.
// What the NV index holds and which policies are approved for it: src/trust/ (README.md beside this file).
import { canHash, hash } from '../crypto/primitives.ts';
import { BANKS, type BankName, bankLabel, TPM_CC } from './constants.ts';
import type { Approval } from './approvals.ts';
import { pcrKey, type PcrValues, type Tpm } from './client.ts';
import { commandName } from './frame.ts';
import { TpmFormatError } from './marshal.ts';
import { type PcrSelection, formatPcrSelection, selectionOrder, withPcr } from './pcr-selection.ts';
import { approvalDigest, policyCommandCode, policyPcr, ZERO_POLICY } from './policy.ts';
import { type PolicyKey, type Signer, verifyRaw } from './policy-key.ts';
import type { VerifiedTicket } from './structures.ts';
import { RC, TpmError } from './response-codes.ts';

export const DEFAULT_CAP_PCR = 15;
/** The event extended into the cap PCR (its digest in each bank). */
export const CAP_EVENT = Buffer.from('sealroot: trusted digest read, capped');
/**
 * Extended on top of the cap when a boot fails, so that the failure is recorded in the TPM (a quote or an event
 * log shows it) and no approval made for a successful boot's PCR state matches for the rest of this boot.
 */
export const BOOT_FAILED_EVENT = Buffer.from('sealroot: boot failed, approvals void');

export class PolicyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PolicyError';
  }
}

/** No approval fits the TPM's current PCR values (the usual failure of a changed boot chain). */
export class NoApprovalError extends PolicyError {
  constructor(message: string) {
    super(message);
    this.name = 'NoApprovalError';
  }
}

export function capEventDigest(bank: BankName, event: Buffer = CAP_EVENT): Buffer {
  return hash(BANKS[bank].node, event);
}

/** The value of a PCR after one extend with the cap event: H(old || H(event)). */
export function cappedValue(bank: BankName, before: Buffer): Buffer {
  return hash(BANKS[bank].node, before, capEventDigest(bank));
}

/** PolicyPCR(selection, values) then PolicyCommandCode(command), from a zero digest. */
export function pcrCommandPolicy(selection: PcrSelection, values: PcrValues, command: number): Buffer {
  const ordered = selectionOrder(selection).map(({ bank, pcr }) => {
    const value = values.get(pcrKey(bank, pcr));
    if (value === undefined) throw new PolicyError(`no value for PCR ${bank}:${pcr}`);
    return value;
  });
  return policyCommandCode(policyPcr(ZERO_POLICY, selection, ordered), command);
}

/**
 * The read approval for one boot chain: `values` are the PCRs (selection plus cap PCR) as the initramfs sees them
 * before the cap; the policy is PolicyPCR(those values) + PolicyCommandCode(NV_Read), signed for `policyRef`.
 */
export function makeReadApproval(signer: Signer, selection: PcrSelection, capPcr: number, values: PcrValues, policyRef: Buffer): Approval {
  const full = withPcr(selection, capPcr);
  const policy = pcrCommandPolicy(full, values, TPM_CC.NV_Read);
  const recorded: Record<string, string> = {};
  for (const { bank, pcr } of selectionOrder(full)) {
    const value = values.get(pcrKey(bank, pcr));
    if (value === undefined) throw new PolicyError(`no value for PCR ${bank}:${pcr}`);
    recorded[pcrKey(bank, pcr)] = value.toString('hex');
  }
  return { purpose: 'read', policy, signature: signer.signRaw(Buffer.concat([policy, policyRef])), pcrs: formatPcrSelection(full), values: recorded };
}

/** A ticket for `approved` from the TPM: LoadExternal(K_pcr) (its Name must be ours) -> VerifySignature. */
export async function approvalTicket(tpm: Tpm, policyKey: PolicyKey, approved: Buffer, policyRef: Buffer, signature: Buffer): Promise<VerifiedTicket> {
  const key = await tpm.loadExternal(policyKey.publicArea);
  try {
    if (!key.name.equals(policyKey.name)) throw new PolicyError(`the TPM computed the policy key's name as ${key.name.toString('hex')}, expected ${policyKey.name.toString('hex')}`);
    return await tpm.verifySignature(key.handle, approvalDigest(approved, policyRef), policyKey.marshalSignature(signature));
  } finally {
    await tpm.flush(key.handle);
  }
}

/** Authorizes `session` with the read approval for its current policy digest (VerifySignature -> ticket -> PolicyAuthorize). */
export async function authorizeRead(tpm: Tpm, session: number, approvals: readonly Approval[], policyKey: PolicyKey, policyRef: Buffer): Promise<void> {
  const reads = approvals.filter((a) => a.purpose === 'read');
  // One read approval (the usual state): the TPM need not be asked which policy the session is at, PolicyAuthorize
  // itself refuses an approval that is not the session's digest (TPM_RC_VALUE, Part 3 §23.16), one TPM command less
  // per boot. Nor is its signature checked in software first (node:crypto: ~100 ms of a boot under QEMU TCG): the
  // TPM's VerifySignature is the check that counts, and only its refusal leads to the path below, whose software
  // check gives the refusal's line. A signature of another size than the key's goes there at once: the attacker
  // who writes the state directory does not choose the size of a TPM command.
  const only = reads.length === 1 ? reads[0]! : undefined;
  if (only !== undefined && only.signature.length === policyKey.signatureSize) {
    try {
      const ticket = await approvalTicket(tpm, policyKey, only.policy, policyRef, only.signature);
      await tpm.policyAuthorize(session, only.policy, policyRef, policyKey.name, ticket);
      return;
    } catch (error) {
      if (!refusedApproval(error)) throw error;
    }
  }
  const current = await tpm.policyGetDigest(session);
  const candidates = reads.filter((a) => a.policy.equals(current));
  if (candidates.length === 0) {
    throw new NoApprovalError(`no read approval matches the current PCR values (policy ${current.toString('hex')}; ${reads.length} read approvals in the state directory)`);
  }
  const valid = candidates.find((a) => verifyRaw(policyKey, Buffer.concat([a.policy, policyRef]), a.signature));
  if (valid === undefined) throw new PolicyError(`the read approval for policy ${current.toString('hex')} is not signed by the policy key`);
  const ticket = await approvalTicket(tpm, policyKey, valid.policy, policyRef, valid.signature);
  await tpm.policyAuthorize(session, valid.policy, policyRef, policyKey.name, ticket);
}

/**
 * The TPM's refusal of an approval, which the path that checks it in software explains: its signature (VerifySignature
 * fails: TPM_RC_SIGNATURE for a wrong one, another code for a malformed one; or it cannot be marshalled) or its
 * policy (PolicyAuthorize: TPM_RC_VALUE, not the session's digest).
 */
function refusedApproval(error: unknown): boolean {
  if (error instanceof TpmFormatError) return true;
  if (!(error instanceof TpmError)) return false;
  return error.command === commandName(TPM_CC.VerifySignature) || (error.command === commandName(TPM_CC.PolicyAuthorize) && error.base === RC.VALUE);
}

/**
 * Runs `body` in a policy session and flushes it after. endedByBody: the body's last command cleared continueSession,
 * so a body that succeeded leaves nothing to flush.
 */
export async function withPolicySession<T>(
  tpm: Tpm, body: (session: { handle: number; nonceTpm: Buffer }) => Promise<T>, options: { endedByBody?: boolean } = {},
): Promise<T> {
  const session = await tpm.startPolicySession();
  let failed = true;
  try {
    const result = await body(session);
    failed = false;
    return result;
  } finally {
    // A used policy session with continueSession stays loaded; flush it (an error here must not hide the first one).
    if (failed || options.endedByBody !== true) {
      await tpm.flush(session.handle).catch((error: unknown) => {
        if (!failed) throw error;
      });
    }
  }
}

/**
 * Every bank of the selection must be allocated: a TPM accepts PolicyPCR over an unallocated bank and hashes no
 * values for it, so the failure would otherwise only show as a policy that matches no approval.
 */
export async function checkBanks(tpm: Tpm, selection: PcrSelection): Promise<void> {
  const allocated = (await tpm.pcrBanks()).map((entry) => entry.bank);
  const missing = selection.filter((entry) => !allocated.includes(entry.bank)).map((entry) => entry.bank);
  if (missing.length > 0) throw new PolicyError(`PCR bank ${missing.join(', ')} is not allocated on this TPM (allocated: ${allocated.map(bankLabel).join(', ')})`);
}

/**
 * Extends `pcr` with the cap event (or BOOT_FAILED_EVENT) in every allocated bank, by TPM2_PCR_Event: the TPM hashes
 * the event itself, so no allocated bank is left out (also one sealroot cannot hash) and the banks need not be asked
 * first (one TPM command less per boot). The digest the TPM returns for each algorithm sealroot can hash must be
 * capEventDigest: cappedValue, and so every approval signed for a capped state, assumes it. Returns the algorithms
 * the TPM hashed the event with (every one it implements: Tpm.pcrEvent).
 */
export async function extendCap(tpm: Tpm, pcr: number, event: Buffer = CAP_EVENT): Promise<string[]> {
  const digests = await tpm.pcrEvent(pcr, event);
  for (const { bank, digest } of digests) {
    if (typeof bank !== 'string' || !canHash(BANKS[bank].node)) continue;
    const expected = capEventDigest(bank, event);
    if (!digest.equals(expected)) {
      throw new PolicyError(`PCR ${pcr}, bank ${bank}: TPM2_PCR_Event hashed the event to ${digest.toString('hex')}, not ${expected.toString('hex')}`);
    }
  }
  return digests.map((entry) => bankLabel(entry.bank));
}
