// The boot sequence's view of the TPM: read the authenticated trusted digest, then cap the PCR so that nothing later
// in this boot can read it again. See README.md beside this file for the design and the threat model.
import type { Logger } from '../log.ts';
import { StepError } from '../errors.ts';
import type { Digest } from '../verity/digest.ts';
import { StateError, readApprovals } from './approvals.ts';
import { Tpm } from './client.ts';
import { parsePcrSelection, withPcr } from './pcr-selection.ts';
import { DEFAULT_POLICY_KEY, loadPolicyKey } from './policy-key.ts';
import { BOOT_FAILED_EVENT, CAP_EVENT, DEFAULT_CAP_PCR, DEFAULT_NV_INDEX, extendCap, NoApprovalError, readSealedDigest } from './sealed-digest.ts';

export interface ReadTrustedDigestOptions {
  /** tpm2-tools TCTI syntax: `device:/dev/tpmrm0` (default), `device:/dev/tpm0`, `swtpm:host=H,port=P`. */
  tcti: string;
  /** PCR selection in tpm2-tools syntax, e.g. `sha256:0,2,4,7,9` (the cap PCR is added to it). */
  pcrs: string;
  /** Directory with the signed approvals (attacker-writable: only signatures live there). */
  stateDir: string;
  /** PEM public key of the PCR-policy signing key (a trusted path in the initramfs); default /etc/sealroot/policy-key.pem. */
  policyKeyPath?: string;
  /** Default 0x01000E01. */
  nvIndex?: number;
  /** Default 15. */
  capPcr?: number;
  log?: Logger;
}

export interface CapPcrOptions {
  tcti: string;
  /** Default 15 (not resettable at locality 0; never 16 or 23, which are). */
  pcr?: number;
  /**
   * 'digest-read' (default): the cap after the read. 'boot-failed': extended on top of the cap when the boot fails,
   * so that no approval, read or write, matches for the rest of this boot (see BOOT_FAILED_EVENT).
   */
  event?: CapEvent;
  log?: Logger;
}

export type CapEvent = 'digest-read' | 'boot-failed';

function tpmError(reason: string, error: unknown, path?: string): StepError {
  if (error instanceof StepError) return error;
  const where = path ?? (error instanceof StateError ? error.path : undefined);
  return new StepError('tpm', reason, { cause: error, ...(where === undefined ? {} : { path: where }) });
}

/** Reads the trusted digest from the NV index after checking its name; throws StepError('tpm', ...). */
export async function readTrustedDigest(options: ReadTrustedDigestOptions): Promise<Digest> {
  const policyKeyPath = options.policyKeyPath ?? DEFAULT_POLICY_KEY;
  let tpm: Tpm | undefined;
  try {
    const selection = parsePcrSelection(options.pcrs);
    const policyKey = loadPolicyKey(policyKeyPath);
    tpm = await Tpm.open(options.tcti);
    const bytes = await readSealedDigest(tpm, {
      selection, policyKey, approvals: readApprovals(options.stateDir),
      nvIndex: options.nvIndex ?? DEFAULT_NV_INDEX, capPcr: options.capPcr ?? DEFAULT_CAP_PCR,
    });
    const digest: Digest = { algorithm: bytes.length === 64 ? 'sha512' : 'sha256', bytes };
    options.log?.info(`tpm: read the trusted digest from ${tpm.description} (NV index name and PolicyAuthorize approval checked)`);
    return digest;
  } catch (error) {
    if (error instanceof NoApprovalError && tpm !== undefined) await logPcrValues(tpm, options);
    throw tpmError('cannot read the trusted digest', error);
  } finally {
    await tpm?.close();
  }
}

/** For the person debugging a changed boot chain: the values the approvals would have to be signed for. */
async function logPcrValues(tpm: Tpm, options: ReadTrustedDigestOptions): Promise<void> {
  try {
    const selection = withPcr(parsePcrSelection(options.pcrs), options.capPcr ?? DEFAULT_CAP_PCR);
    const values = await tpm.pcrRead(selection);
    options.log?.notice(`tpm: current PCR values: ${[...values].map(([key, value]) => `${key}=${value.toString('hex')}`).join(' ')}`);
  } catch (error) {
    options.log?.warn(`tpm: cannot read the PCR values for the log: ${(error as Error).message}`);
  }
}

/** Extends the cap PCR (default 15) with the sealroot cap event in every bank; throws StepError('tpm', ...). */
export async function capPcr(options: CapPcrOptions): Promise<void> {
  const pcr = options.pcr ?? DEFAULT_CAP_PCR;
  const failed = options.event === 'boot-failed';
  let tpm: Tpm | undefined;
  try {
    tpm = await Tpm.open(options.tcti);
    const banks = await extendCap(tpm, pcr, failed ? BOOT_FAILED_EVENT : CAP_EVENT);
    options.log?.info(`tpm: ${failed ? 'boot failed: approvals voided in' : 'capped'} PCR ${pcr} (${banks.join(', ')})`);
  } catch (error) {
    throw tpmError(`cannot ${failed ? 'void the approvals in' : 'cap'} PCR ${pcr}`, error);
  } finally {
    await tpm?.close();
  }
}

/**
 * readTrustedDigest, then capPcr on every exit path. When both fail, the read's error is thrown and the cap's is
 * logged; when only the cap fails, its error is thrown (a boot must not go on with the digest still readable).
 */
export async function readTrustedDigestAndCap(options: ReadTrustedDigestOptions): Promise<Digest> {
  let digest: Digest | undefined;
  let readError: unknown;
  try {
    digest = await readTrustedDigest(options);
  } catch (error) {
    readError = error;
  }
  try {
    await capPcr({ tcti: options.tcti, pcr: options.capPcr ?? DEFAULT_CAP_PCR, ...(options.log === undefined ? {} : { log: options.log }) });
  } catch (capError) {
    if (readError === undefined) throw capError;
    options.log?.error((capError as Error).message);
  }
  if (readError !== undefined) throw readError;
  return digest!;
}
