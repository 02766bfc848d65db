// Pure: the NV index that holds the trusted set, and every policy the key holder approves for it.
//
// authPolicy = PolicyAuthorize(K_pcr, TRUST_POLICY_REF): nothing but a policy approved (signed) by the policy key
// reads or writes the index; no owner, platform or authValue access. The key holder approves three kinds of policy:
//
//   read     PolicyPCR(selection + cap PCR, the trusted boot's values before the cap) ; PolicyCommandCode(NV_Read)
//            (per boot chain; the cap makes it unusable for the rest of the boot)
//   compare  PolicyCommandCode(PolicyNV): lets anyone compare the index's bytes with a value (TPM2_PolicyNV). The
//            set is public (image digests are computable from the disk); what matters is who can write.
//   update   PolicyNV(header = format, algorithm, K) ; PolicyNV(slot s version < N) ;
//            PolicyCpHash(NV_Write(this index, slot s bytes of (N, size, D), offset))
//            one exact write of one exact slot, on any machine whose index has this Name (one file serves a fleet,
//            no nonce), and only while the slot holds an older version: the TPM refuses a replayed or older update.
//            The header comparison binds the write to the record's layout: the Name depends on the size alone, and
//            sizes collide (3 SHA-512 slots and 5 SHA-256 slots are both 244 bytes), and a later record format must
//            not take writes signed for this one.
//
// There is no PCR-bound write approval: no software on the machine, whatever its PCRs, can write a value the key
// holder did not sign (issue 11). The first write (sealroot provision) is a one-time PolicySigned over the TPM's
// nonce and the exact bytes, made with the private key at hand.
import { TPM_ALG, TPM_CC, TPM_EO, TPMA_NV } from '../tpm2/constants.ts';
import { nvWriteParameters } from '../tpm2/client.ts';
import { commandParametersHash, policyAuthorize, policyCommandCode, policyCpHash, policyNv, ZERO_POLICY } from '../tpm2/policy.ts';
import type { PolicyKey } from '../tpm2/policy-key.ts';
import { type NvPublic, nvName } from '../tpm2/structures.ts';
import type { HashAlgorithm } from '../verity/digest.ts';
import { encodeHeader, encodeSlot, recordSize, slotOffset, type TrustedImage, versionBytes } from './record.ts';

export const DEFAULT_TRUST_INDEX = 0x01000e01;
/**
 * Binds approvals to this index design. Another policyRef than the single-digest design's ("sealroot/nv-digest/v1"),
 * so that none of its approvals (PCR-bound *write* approvals among them) counts for this index.
 */
export const TRUST_POLICY_REF = Buffer.from('sealroot/trusted-set/v1');
/** policyRef of the one-time PolicySigned authorization of a first install. */
export const PROVISION_REF = Buffer.from('sealroot/provision/v1');

/**
 * Policy read and policy write only (no owner/auth/platform access, no POLICY_DELETE); no WRITEALL: an update
 * writes one slot. Ordinary index: NV_Increment/Extend/SetBits do not apply; no WRITEDEFINE/WRITE_STCLEAR/
 * READ_STCLEAR, so nobody can lock it (TPMA_NV, Part 2 §13.4).
 */
export const TRUST_NV_ATTRIBUTES = TPMA_NV.POLICYWRITE | TPMA_NV.POLICYREAD;

export function trustIndexPublic(nvIndex: number, policyKey: PolicyKey, dataSize: number, written: boolean): NvPublic {
  return {
    nvIndex,
    nameAlg: TPM_ALG.SHA256,
    attributes: TRUST_NV_ATTRIBUTES | (written ? TPMA_NV.WRITTEN : 0),
    authPolicy: policyAuthorize(policyKey.name, TRUST_POLICY_REF),
    dataSize,
  };
}

export function trustIndexName(nvIndex: number, policyKey: PolicyKey, dataSize: number, written: boolean): Buffer {
  return nvName(trustIndexPublic(nvIndex, policyKey, dataSize, written));
}

export function comparePolicy(): Buffer {
  return policyCommandCode(ZERO_POLICY, TPM_CC.PolicyNV);
}

/** NV_Write's cpHash for `data` at `offset` of the index named `name` (auth handle and index: the index itself). */
export function writeCpHash(name: Buffer, data: Buffer, offset: number): Buffer {
  return commandParametersHash(TPM_CC.NV_Write, [name, name], nvWriteParameters(data, offset));
}

export interface UpdateTarget {
  nvIndex: number;
  algorithm: HashAlgorithm;
  slots: number;
  slot: number;
}

/** The approved policy of one update: this image into `slot` of a written index of `slots` slots. */
export function updatePolicy(policyKey: PolicyKey, target: UpdateTarget, image: TrustedImage): Buffer {
  const name = trustIndexName(target.nvIndex, policyKey, recordSize(target.algorithm, target.slots), true);
  const offset = slotOffset(target.algorithm, target.slot);
  const layout = policyNv(ZERO_POLICY, encodeHeader(target.algorithm, target.slots), 0, TPM_EO.EQ, name);
  const newer = policyNv(layout, versionBytes(image.version), offset, TPM_EO.UNSIGNED_LT, name);
  return policyCpHash(newer, writeCpHash(name, encodeSlot(image), offset));
}
