// The boot sequence's view of the TPM: read the authenticated trusted set, then cap the PCR so that nothing later
// in this boot can read it again. Design and threat model: src/tpm2/README.md.
import type { Logger } from '../log.ts';
import { StepError } from '../errors.ts';
import { StateError, readApprovals } from '../tpm2/approvals.ts';
import { BOOT_FAILED_EVENT, CAP_EVENT, DEFAULT_CAP_PCR, extendCap, NoApprovalError } from '../tpm2/approved-policy.ts';
import { Tpm } from '../tpm2/client.ts';
import { parsePcrSelection, withPcr } from '../tpm2/pcr-selection.ts';
import { DEFAULT_POLICY_KEY, loadPolicyKey } from '../tpm2/policy-key.ts';
import { formatDigest } from '../verity/digest.ts';
import { DEFAULT_TRUST_INDEX } from './policies.ts';
import { members, type TrustedSet } from './record.ts';
import { readTrustedSet } from './tpm-set.ts';

export interface ReadTrustOptions {
  /** tpm2-tools TCTI syntax: `device:/dev/tpmrm0` (default), `device:/dev/tpm0`, `swtpm:host=H,port=P`. */
  tcti: string;
  /** PCR selection in tpm2-tools syntax, e.g. `sha256:0,2,4,7,9` (the cap PCR is added to it). */
  pcrs: string;
  /** Directory with the signed read approvals (attacker-writable: only signatures live there). */
  stateDir: string;
  /** PEM public key of the policy key (a trusted path in the initramfs); default /etc/sealroot/policy-key.pem. */
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
  /** 'digest-read' (default): the cap after the read. 'boot-failed': extended on top of it when the boot fails. */
  event?: CapEvent;
  log?: Logger;
}

export type CapEvent = 'digest-read' | 'boot-failed';

function tpmError(reason: string, error: unknown): StepError {
  if (error instanceof StepError) return error;
  const path = error instanceof StateError ? error.path : undefined;
  return new StepError('tpm', reason, { cause: error, ...(path === undefined ? {} : { path }) });
}

/** One line for the log: `versions 3 (sha256:…), 2 (sha256:…)`. */
export function describeSet(set: TrustedSet): string {
  const list = members(set);
  if (list.length === 0) return 'no trusted image';
  return `version${list.length === 1 ? '' : 's'} ${list.map((image) => `${image.version} (${formatDigest(image.digest)})`).join(', ')}`;
}

/**
 * A TPM connection handed from the read to the cap that follows it: one connection (the boot's read and cap are two
 * steps: src/boot/trust-source.ts).
 */
export interface HeldConnection {
  tpm?: Tpm;
}

/**
 * Reads the trusted set after checking the index's Name; throws StepError('tpm', ...). With `held`, through its
 * connection if it has one, and the connection stays open there (even when the read fails) for capPcr, which closes it.
 */
export async function readTrust(options: ReadTrustOptions, held?: HeldConnection): Promise<TrustedSet> {
  let tpm: Tpm | undefined;
  try {
    const selection = parsePcrSelection(options.pcrs);
    const policyKey = loadPolicyKey(options.policyKeyPath ?? DEFAULT_POLICY_KEY);
    tpm = held?.tpm ?? await Tpm.open(options.tcti);
    const set = await readTrustedSet(tpm, {
      selection, policyKey, approvals: readApprovals(options.stateDir),
      nvIndex: options.nvIndex ?? DEFAULT_TRUST_INDEX, capPcr: options.capPcr ?? DEFAULT_CAP_PCR,
    });
    if (members(set).length === 0) throw new StepError('tpm', 'the trusted set is empty');
    options.log?.info(`tpm: read the trusted set from ${tpm.description} (NV index name and PolicyAuthorize approval checked): ${describeSet(set)}`);
    return set;
  } catch (error) {
    if (error instanceof NoApprovalError && tpm !== undefined) await logPcrValues(tpm, options);
    throw tpmError('cannot read the trusted set', error);
  } finally {
    if (held !== undefined) held.tpm = tpm;
    else await tpm?.close();
  }
}

/** For the person debugging a changed boot chain: the values the approvals would have to be signed for. */
async function logPcrValues(tpm: Tpm, options: ReadTrustOptions): Promise<void> {
  try {
    const selection = withPcr(parsePcrSelection(options.pcrs), options.capPcr ?? DEFAULT_CAP_PCR);
    const values = await tpm.pcrRead(selection);
    options.log?.notice(`tpm: current PCR values: ${[...values].map(([key, value]) => `${key}=${value.toString('hex')}`).join(' ')}`);
  } catch (error) {
    options.log?.warn(`tpm: cannot read the PCR values for the log: ${(error as Error).message}`);
  }
}

/**
 * Extends the cap PCR (default 15) with the sealroot cap event in every bank; throws StepError('tpm', ...). Through
 * the connection the read held, if any (then closed), or a new one.
 */
export async function capPcr(options: CapPcrOptions, held?: HeldConnection): Promise<void> {
  const pcr = options.pcr ?? DEFAULT_CAP_PCR;
  const failed = options.event === 'boot-failed';
  let tpm: Tpm | undefined = held?.tpm;
  if (held !== undefined) held.tpm = undefined;
  try {
    tpm ??= await Tpm.open(options.tcti);
    const hashes = await extendCap(tpm, pcr, failed ? BOOT_FAILED_EVENT : CAP_EVENT);
    // The TPM returns a digest per hash it implements, not per bank it extended (Tpm.pcrEvent): the line says so.
    options.log?.info(`tpm: ${failed ? 'boot failed: recorded in' : 'capped'} PCR ${pcr} in every allocated bank (TPM2_PCR_Event digests: ${hashes.join(', ')})`);
  } catch (error) {
    throw tpmError(`cannot ${failed ? 'record the failed boot in' : 'cap'} PCR ${pcr}`, error);
  } finally {
    await tpm?.close();
  }
}

/**
 * readTrust, then capPcr on every exit path. When both fail, the read's error is thrown and the cap's is
 * logged; when only the cap fails, its error is thrown (a boot must not go on with the set still readable).
 */
export async function readTrustAndCap(options: ReadTrustOptions): Promise<TrustedSet> {
  let set: TrustedSet | undefined;
  let readError: unknown;
  const held: HeldConnection = {};
  try {
    set = await readTrust(options, held);
  } catch (error) {
    readError = error;
  }
  try {
    await capPcr({ tcti: options.tcti, pcr: options.capPcr ?? DEFAULT_CAP_PCR, ...(options.log === undefined ? {} : { log: options.log }) }, held);
  } catch (capError) {
    if (readError === undefined) throw capError;
    options.log?.error((capError as Error).message);
  }
  if (readError !== undefined) throw readError;
  return set!;
}
