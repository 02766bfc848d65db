// Policy digests computed in software, exactly as the TPM extends policySession->policyDigest (Part 3 §23).
// All SHA-256 (the sessions sealroot starts use SHA-256, and so does the NV index's name algorithm).
import { TPM_CC } from './constants.ts';
import { Writer } from './marshal.ts';
import { marshalPcrSelection, type PcrSelection } from './pcr-selection.ts';
import { sha256 } from './structures.ts';

export const ZERO_POLICY = Buffer.alloc(32);

const cc = (code: number) => new Writer().u32(code).finish();

/** TPM2_PolicyPCR: H(old || CC || TPML_PCR_SELECTION || H(values in selection order)). */
export function policyPcr(old: Buffer, selection: PcrSelection, values: Buffer[]): Buffer {
  return sha256(old, cc(TPM_CC.PolicyPCR), marshalPcrSelection(selection).finish(), sha256(...values));
}

export function policyCommandCode(old: Buffer, code: number): Buffer {
  return sha256(old, cc(TPM_CC.PolicyCommandCode), cc(code));
}

/** TPM2_PolicySigned and TPM2_PolicyAuthorize both reset/extend with the key's name, then with policyRef (§23.3, §23.16). */
function policyUpdate(old: Buffer, code: number, keyName: Buffer, policyRef: Buffer): Buffer {
  return sha256(sha256(old, cc(code), keyName), policyRef);
}

export function policySigned(old: Buffer, keyName: Buffer, policyRef: Buffer): Buffer {
  return policyUpdate(old, TPM_CC.PolicySigned, keyName, policyRef);
}

/** PolicyAuthorize replaces whatever digest the session had: the result depends on the key and policyRef only. */
export function policyAuthorize(keyName: Buffer, policyRef: Buffer): Buffer {
  return policyUpdate(ZERO_POLICY, TPM_CC.PolicyAuthorize, keyName, policyRef);
}

/** aHash of an approval that TPM2_VerifySignature checks for TPM2_PolicyAuthorize: H(approvedPolicy || policyRef). */
export function approvalDigest(approvedPolicy: Buffer, policyRef: Buffer): Buffer {
  return sha256(approvedPolicy, policyRef);
}

/** What a TPM2_PolicySigned signature signs (Signer.sign hashes it): nonceTPM || expiration || cpHashA || policyRef (§23.3). */
export function policySignedMessage(nonceTpm: Buffer, expiration: number, cpHash: Buffer, policyRef: Buffer): Buffer {
  return Buffer.concat([nonceTpm, new Writer().u32(expiration).finish(), cpHash, policyRef]);
}

/** aHash that a TPM2_PolicySigned signature covers: H(policySignedMessage). */
export function policySignedDigest(nonceTpm: Buffer, expiration: number, cpHash: Buffer, policyRef: Buffer): Buffer {
  return sha256(policySignedMessage(nonceTpm, expiration, cpHash, policyRef));
}

/** cpHash = H(commandCode || names of the handles || parameters) (Part 1 §18.7). */
export function commandParametersHash(code: number, names: Buffer[], parameters: Buffer): Buffer {
  return sha256(cc(code), ...names, parameters);
}

/** TPM2_PolicyNV: H(old || CC || H(operandB || offset || operation) || nvIndex Name) (Part 3 §23.9). */
export function policyNv(old: Buffer, operandB: Buffer, offset: number, operation: number, nvIndexName: Buffer): Buffer {
  const args = sha256(operandB, new Writer().u16(offset).u16(operation).finish());
  return sha256(old, cc(TPM_CC.PolicyNV), args, nvIndexName);
}

/** TPM2_PolicyCpHash: H(old || CC || cpHashA) (Part 3 §23.13); the session then authorizes only that command. */
export function policyCpHash(old: Buffer, cpHash: Buffer): Buffer {
  return sha256(old, cc(TPM_CC.PolicyCpHash), cpHash);
}
