// Where the trusted images come from. The TPM's trusted set (authenticated, PCR-bound) unless the boot
// configuration explicitly allows the unauthenticated `sealroot.digest=` karg (development only: whoever edits the
// bootloader entry then chooses the root).
import type { Logger } from '../log.ts';
import type { BootConfig } from '../config/boot-config.ts';
import { kargValue, type Cmdline } from '../config/cmdline.ts';
import { StepError } from '../errors.ts';
import { capPcr, readTrust, type CapEvent, type HeldConnection } from '../trust/boot-read.ts';
import { members } from '../trust/record.ts';
import { DigestSyntaxError, parseDigest, type Digest } from '../verity/digest.ts';

export interface DigestContext {
  config: BootConfig;
  cmdline: Cmdline;
  log: Logger;
}

/** An image the boot may mount: from the TPM's set (with the version and size the key holder signed), or the karg. */
export interface TrustedCandidate {
  digest: Digest;
  /** The signed version; undefined for the development karg. */
  version?: number;
  /** The image's size as signed (the decompressed size of a zstd image). */
  size?: number;
}

export const DIGEST_KARG = 'sealroot.digest';

/** A boot's TPM connection, from its read to the cap right after it. */
const heldConnections = new WeakMap<DigestContext, HeldConnection>();

/** The trusted images, newest first. */
export async function configuredTrustedImages(context: DigestContext): Promise<TrustedCandidate[]> {
  const { config, cmdline, log } = context;
  if (config.digest.source === 'tpm') {
    const held: HeldConnection = {};
    heldConnections.set(context, held);
    const set = await readTrust({
      tcti: config.tpm.tcti, pcrs: config.tpm.pcrs, stateDir: config.tpm.stateDir, policyKeyPath: config.tpm.policyKeyPath,
      capPcr: config.tpm.capPcr, log,
    }, held);
    return members(set);
  }
  // parseBootConfig accepts source = "cmdline" only together with allow-unauthenticated-cmdline = true.
  const text = kargValue(cmdline, DIGEST_KARG);
  if (text === undefined) throw new StepError('trusted-digest', `the configuration takes the digest from the kernel command line, but there is no ${DIGEST_KARG}=`);
  let digest: Digest;
  try {
    digest = parseDigest(text);
  } catch (error) {
    if (error instanceof DigestSyntaxError) throw new StepError('trusted-digest', `${DIGEST_KARG}=: ${error.message}`);
    throw error;
  }
  log.warn(`UNAUTHENTICATED trusted digest from the kernel command line (${DIGEST_KARG}=), as the configuration allows: `
    + 'anyone who can edit the boot entry chooses this root');
  return [{ digest }];
}

export async function configuredCapPcr(context: DigestContext, event: CapEvent): Promise<void> {
  const { config, log } = context;
  if (config.digest.source !== 'tpm') return;
  const held = heldConnections.get(context);
  heldConnections.delete(context);
  await capPcr({ tcti: config.tpm.tcti, pcr: config.tpm.capPcr, event, log }, held);
}
