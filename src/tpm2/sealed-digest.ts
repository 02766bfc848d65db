// Design (c) (README.md beside this file): the trusted digest lives in an NV index whose reads and writes are
// both authorized by PolicyAuthorize(K_pcr) with PCR-bound, command-bound approvals signed offline by the vendor.
// The reader trusts the index only after checking its Name, computed from the public area it expects.
import { createHash, getHashes } from 'node:crypto';
import { BANKS, type BankName, TPM_ALG, TPM_CC, TPMA_NV } from './constants.ts';
import { type Approval, type Purpose } from './approvals.ts';
import { nvWriteParameters, pcrKey, type PcrValues, type Tpm } from './client.ts';
import { type PcrSelection, formatPcrSelection, selectionOrder, withPcr } from './pcr-selection.ts';
import { approvalDigest, commandParametersHash, policyAuthorize, policyCommandCode, policyPcr, policySigned, ZERO_POLICY } from './policy.ts';
import { type PolicyKey, type Signer, verifyRaw } from './policy-key.ts';
import { RC, TpmError } from './response-codes.ts';
import { type NvPublic, nvName } from './structures.ts';

export const DEFAULT_NV_INDEX = 0x01000e01;
export const DEFAULT_CAP_PCR = 15;
/** Binds approvals to this use of K_pcr: a signature made for another purpose (e.g. a systemd PCR policy) is no approval here. */
export const POLICY_REF = Buffer.from('sealroot/nv-digest/v1');
/** policyRef of the one-time PolicySigned authorization that provisioning with the private key uses. */
export const PROVISION_REF = Buffer.from('sealroot/provision/v1');
/** The event extended into the cap PCR (its digest in each bank). */
export const CAP_EVENT = Buffer.from('sealroot: trusted digest read, capped');
/**
 * Extended on top of the cap when a boot fails: the cap PCR then matches neither the read approvals (pre-cap value)
 * nor the write approvals (capped once), so an emergency shell left by a failed trusted boot cannot write the next
 * digest for the rest of this boot.
 */
export const BOOT_FAILED_EVENT = Buffer.from('sealroot: boot failed, approvals void');

/** Policy read and policy write only: no owner/auth/platform read or write, no policy delete (TPMA_NV, Part 2 §13.4). */
export const NV_ATTRIBUTES = TPMA_NV.POLICYWRITE | TPMA_NV.POLICYREAD | TPMA_NV.WRITEALL;

export class SealedDigestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SealedDigestError';
  }
}

/** No approval in the state directory fits the TPM's current PCR values (the usual failure of a changed boot chain). */
export class NoApprovalError extends SealedDigestError {
  constructor(message: string) {
    super(message);
    this.name = 'NoApprovalError';
  }
}

export function expectedNvPublic(nvIndex: number, policyKey: PolicyKey, dataSize: number, written: boolean): NvPublic {
  return {
    nvIndex,
    nameAlg: TPM_ALG.SHA256,
    attributes: NV_ATTRIBUTES | (written ? TPMA_NV.WRITTEN : 0),
    authPolicy: policyAuthorize(policyKey.name, POLICY_REF),
    dataSize,
  };
}

export function capEventDigest(bank: BankName, event: Buffer = CAP_EVENT): Buffer {
  return createHash(BANKS[bank].node).update(event).digest();
}

/** The value of a PCR after one extend with the cap event: H(old || H(event)). */
export function cappedValue(bank: BankName, before: Buffer): Buffer {
  return createHash(BANKS[bank].node).update(before).update(capEventDigest(bank)).digest();
}

/** PolicyPCR(selection, values) then PolicyCommandCode(command), from a zero digest. */
export function pcrCommandPolicy(selection: PcrSelection, values: PcrValues, command: number): Buffer {
  const ordered = selectionOrder(selection).map(({ bank, pcr }) => {
    const value = values.get(pcrKey(bank, pcr));
    if (value === undefined) throw new SealedDigestError(`no value for PCR ${bank}:${pcr}`);
    return value;
  });
  return policyCommandCode(policyPcr(ZERO_POLICY, selection, ordered), command);
}

/**
 * The two approvals for one boot chain. `values` are the PCRs (selection plus cap PCR) as the initramfs will see them
 * before the cap. Read: those values, NV_Read. Write: the cap PCR at its capped value, NV_Write, so that only the
 * running system of a trusted boot (after the initramfs capped) can write the next digest.
 */
export function makeApprovals(signer: Signer, selection: PcrSelection, capPcr: number, values: PcrValues): Approval[] {
  const full = withPcr(selection, capPcr);
  const capped = new Map(values);
  for (const entry of full) {
    const before = values.get(pcrKey(entry.bank, capPcr));
    if (before === undefined) throw new SealedDigestError(`no value for the cap PCR ${entry.bank}:${capPcr}`);
    capped.set(pcrKey(entry.bank, capPcr), cappedValue(entry.bank, before));
  }
  const approval = (purpose: Purpose, policy: Buffer, used: PcrValues): Approval => {
    const signature = signer.signRaw(Buffer.concat([policy, POLICY_REF]));
    const values: Record<string, string> = {};
    for (const { bank, pcr } of selectionOrder(full)) values[pcrKey(bank, pcr)] = used.get(pcrKey(bank, pcr))!.toString('hex');
    return { purpose, policy, signature, pcrs: formatPcrSelection(full), values };
  };
  return [
    approval('read', pcrCommandPolicy(full, values, TPM_CC.NV_Read), values),
    approval('write', pcrCommandPolicy(full, capped, TPM_CC.NV_Write), capped),
  ];
}

export interface IndexOptions {
  nvIndex: number;
  policyKey: PolicyKey;
}

/** The index's state: absent, ours (written or not), or something else (refused). */
export async function inspectIndex(tpm: Tpm, options: IndexOptions): Promise<{ state: 'absent' } | { state: 'ours'; written: boolean; dataSize: number } | { state: 'foreign'; why: string }> {
  let found: { public: NvPublic; name: Buffer };
  try {
    found = await tpm.nvReadPublic(options.nvIndex);
  } catch (error) {
    if (error instanceof TpmError && error.base === RC.HANDLE) return { state: 'absent' };
    throw error;
  }
  for (const dataSize of [32, 64]) {
    for (const written of [true, false]) {
      if (found.name.equals(nvName(expectedNvPublic(options.nvIndex, options.policyKey, dataSize, written)))) return { state: 'ours', written, dataSize };
    }
  }
  const pub = found.public;
  return {
    state: 'foreign',
    why: `name ${found.name.toString('hex')} is not the name of sealroot's index for this policy key `
      + `(it has attributes 0x${pub.attributes.toString(16)}, authPolicy ${pub.authPolicy.toString('hex') || 'empty'}, size ${pub.dataSize})`,
  };
}

/** Authorizes `session` with the approval for its current policy digest (VerifySignature -> ticket -> PolicyAuthorize). */
async function authorize(tpm: Tpm, session: number, purpose: Purpose, approvals: Approval[], policyKey: PolicyKey): Promise<void> {
  const current = await tpm.policyGetDigest(session);
  const candidates = approvals.filter((a) => a.purpose === purpose && a.policy.equals(current));
  if (candidates.length === 0) {
    throw new NoApprovalError(`no ${purpose} approval matches the current PCR values (policy ${current.toString('hex')}; ${approvals.filter((a) => a.purpose === purpose).length} ${purpose} approvals in the state directory)`);
  }
  const valid = candidates.find((a) => verifyRaw(policyKey, Buffer.concat([a.policy, POLICY_REF]), a.signature));
  if (valid === undefined) throw new SealedDigestError(`the ${purpose} approval for policy ${current.toString('hex')} is not signed by the policy key`);
  const key = await tpm.loadExternal(policyKey.publicArea);
  try {
    if (!key.name.equals(policyKey.name)) throw new SealedDigestError(`the TPM computed the policy key's name as ${key.name.toString('hex')}, expected ${policyKey.name.toString('hex')}`);
    const ticket = await tpm.verifySignature(key.handle, approvalDigest(valid.policy, POLICY_REF), policyKey.marshalSignature(valid.signature));
    await tpm.policyAuthorize(session, valid.policy, POLICY_REF, policyKey.name, ticket);
  } finally {
    await tpm.flush(key.handle);
  }
}

async function withPolicySession<T>(tpm: Tpm, body: (session: { handle: number; nonceTpm: Buffer }) => Promise<T>): Promise<T> {
  const session = await tpm.startPolicySession();
  let failed = true;
  try {
    const result = await body(session);
    failed = false;
    return result;
  } finally {
    // A used policy session with continueSession stays loaded; flush it (an error here must not hide the first one).
    await tpm.flush(session.handle).catch((error: unknown) => {
      if (!failed) throw error;
    });
  }
}

/**
 * Every bank of the selection must be allocated: a TPM accepts PolicyPCR over an unallocated bank and hashes no
 * values for it, so the failure would otherwise only show as a policy that matches no approval.
 */
export async function checkBanks(tpm: Tpm, selection: PcrSelection): Promise<void> {
  const allocated = (await tpm.pcrBanks()).map((entry) => entry.bank);
  const missing = selection.filter((entry) => !allocated.includes(entry.bank)).map((entry) => entry.bank);
  if (missing.length > 0) throw new SealedDigestError(`PCR bank ${missing.join(', ')} is not allocated on this TPM (allocated: ${allocated.join(', ')})`);
}

export interface ReadOptions extends IndexOptions {
  selection: PcrSelection;
  capPcr: number;
  approvals: Approval[];
}

/** The authenticated read: name check, PolicyPCR + PolicyCommandCode(NV_Read) + PolicyAuthorize, NV_Read. */
export async function readSealedDigest(tpm: Tpm, options: ReadOptions): Promise<Buffer> {
  const index = await inspectIndex(tpm, options);
  const where = `NV index 0x${options.nvIndex.toString(16)}`;
  if (index.state === 'absent') throw new SealedDigestError(`${where} is not defined (not provisioned on this TPM)`);
  if (index.state === 'foreign') throw new SealedDigestError(`${where} is not trusted: ${index.why}`);
  if (!index.written) throw new SealedDigestError(`${where} was defined but never written`);
  await checkBanks(tpm, options.selection);
  return withPolicySession(tpm, async ({ handle }) => {
    await tpm.policyPcr(handle, withPcr(options.selection, options.capPcr));
    await tpm.policyCommandCode(handle, TPM_CC.NV_Read);
    await authorize(tpm, handle, 'read', options.approvals, options.policyKey);
    const data = await tpm.nvRead(options.nvIndex, index.dataSize, handle);
    if (data.length !== index.dataSize) throw new SealedDigestError(`${where}: NV_Read returned ${data.length} bytes, not ${index.dataSize}`);
    return data;
  });
}

export interface WriteOptions extends IndexOptions {
  selection: PcrSelection;
  capPcr: number;
  approvals: Approval[];
  /** With the private key, a first install can write once through PolicySigned (fresh nonce, cpHash of this write). */
  signer?: Signer;
  ownerAuth?: Buffer;
  log?: (message: string) => void;
}

/**
 * Defines the index if absent (owner auth), refuses an index that is not ours, then writes `digest`: with a write
 * approval valid in the current PCR state (the running system of a trusted boot), or else, given the private key,
 * with a one-time PolicySigned authorization bound to this TPM session's nonce and to this exact write.
 */
export async function writeSealedDigest(tpm: Tpm, digest: Buffer, options: WriteOptions): Promise<'approval' | 'signed'> {
  const where = `NV index 0x${options.nvIndex.toString(16)}`;
  let index = await inspectIndex(tpm, options);
  if (index.state === 'foreign') throw new SealedDigestError(`${where} exists and is not sealroot's (${index.why}); refusing to touch it (tpm2_nvundefine it after checking)`);
  await checkBanks(tpm, options.selection);
  if (index.state === 'absent') {
    await tpm.nvDefineSpace(expectedNvPublic(options.nvIndex, options.policyKey, digest.length, false), options.ownerAuth ?? Buffer.alloc(0));
    options.log?.(`defined ${where} (${digest.length} bytes, policy read/write via PolicyAuthorize)`);
    index = { state: 'ours', written: false, dataSize: digest.length };
  }
  if (index.dataSize !== digest.length) throw new SealedDigestError(`${where} holds ${index.dataSize}-byte digests, not ${digest.length}`);
  const names = nvName(expectedNvPublic(options.nvIndex, options.policyKey, digest.length, index.written));
  const hasWriteApproval = options.approvals.some((a) => a.purpose === 'write');
  if (hasWriteApproval || options.signer === undefined) {
    try {
      await withPolicySession(tpm, async ({ handle }) => {
        await tpm.policyPcr(handle, withPcr(options.selection, options.capPcr));
        await tpm.policyCommandCode(handle, TPM_CC.NV_Write);
        await authorize(tpm, handle, 'write', options.approvals, options.policyKey);
        await tpm.nvWrite(options.nvIndex, digest, handle);
      });
      return 'approval';
    } catch (error) {
      if (options.signer === undefined || !(error instanceof SealedDigestError)) throw error;
      options.log?.(`no write approval for this PCR state (${error.message}); writing with the signing key`);
    }
  }
  const signer = options.signer;
  return withPolicySession(tpm, async ({ handle, nonceTpm }) => {
    const cpHash = commandParametersHash(TPM_CC.NV_Write, [names, names], nvWriteParameters(digest));
    const key = await tpm.loadExternal(signer.policyKey.publicArea);
    try {
      await tpm.policySigned(key.handle, handle, nonceTpm, cpHash, PROVISION_REF, signer.sign(policySignedDigestInput(nonceTpm, cpHash)));
      const approved = policySigned(ZERO_POLICY, signer.policyKey.name, PROVISION_REF);
      const ticket = await tpm.verifySignature(key.handle, approvalDigest(approved, POLICY_REF), signer.sign(Buffer.concat([approved, POLICY_REF])));
      await tpm.policyAuthorize(handle, approved, POLICY_REF, signer.policyKey.name, ticket);
    } finally {
      await tpm.flush(key.handle);
    }
    await tpm.nvWrite(options.nvIndex, digest, handle);
    return 'signed' as const;
  });
}

/** The message whose SHA-256 is PolicySigned's aHash (policySignedDigest), expiration 0. */
export function policySignedDigestInput(nonceTpm: Buffer, cpHash: Buffer): Buffer {
  return Buffer.concat([nonceTpm, Buffer.alloc(4), cpHash, PROVISION_REF]);
}

/** Extends `pcr` in every allocated bank sealroot knows with the cap event (or BOOT_FAILED_EVENT). */
export async function extendCap(tpm: Tpm, pcr: number, event: Buffer = CAP_EVENT): Promise<BankName[]> {
  const banks = (await tpm.pcrBanks()).map((entry) => entry.bank)
    .filter((bank): bank is BankName => typeof bank === 'string' && getHashes().includes(BANKS[bank].node));
  await tpm.pcrExtend(pcr, banks.map((bank) => ({ bank, digest: capEventDigest(bank, event) })));
  return banks;
}
