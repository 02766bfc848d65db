// The boot sequence's view of the TPM: read the authenticated trusted digest, then cap the PCR so that
// nothing later in this boot can read it again. See README.md beside this file for the design and threat model.
import type { Logger } from '../cli/log.ts';
import type { Digest } from '../verity/digest.ts';

export interface ReadTrustedDigestOptions {
  /** tpm2-tools TCTI syntax: `device:/dev/tpmrm0` (default), `device:/dev/tpm0`, `swtpm:host=H,port=P`. */
  tcti: string;
  /** PCR selection in tpm2-tools syntax, e.g. `sha256:0,2,4,7,9`. */
  pcrs: string;
  /** Directory with the signed approvals (attacker-writable: only signatures live there). */
  stateDir: string;
  /** PEM public key of the PCR-policy signing key (a trusted path in the initramfs); default /etc/sealroot/policy-key.pem. */
  policyKeyPath?: string;
  log?: Logger;
}

/** Reads the trusted digest from the NV index after checking its name; throws StepError('tpm', ...). */
export async function readTrustedDigest(options: ReadTrustedDigestOptions): Promise<Digest> {
  void options;
  throw new Error('not implemented yet');
}

/** Extends the cap PCR (default 15) with the sealroot cap event; throws StepError('tpm', ...). */
export async function capPcr(options: { tcti: string; pcr?: number; log?: Logger }): Promise<void> {
  void options;
  throw new Error('not implemented yet');
}
