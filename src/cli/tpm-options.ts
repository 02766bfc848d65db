// What the TPM subcommands share: option texts, defaults, and turning syntax errors into usage errors.
import { UsageError } from './command.ts';
import { StepError } from '../errors.ts';
import { DigestSyntaxError } from '../verity/digest.ts';
import { StateError } from '../tpm2/approvals.ts';
import { OptionError, parseNvIndex } from '../tpm2/options.ts';
import { PcrSelectionError } from '../tpm2/pcr-selection.ts';
import { DEFAULT_POLICY_KEY } from '../tpm2/policy-key.ts';
import { DEFAULT_CAP_PCR } from '../tpm2/approved-policy.ts';
import { DEFAULT_TRUST_INDEX } from '../trust/policies.ts';
import { TrustError } from '../trust/tpm-set.ts';
import { UpdateFileError } from '../trust/update-file.ts';
import { DEFAULT_TCTI, TctiSyntaxError } from '../tpm2/transport.ts';

export const DEFAULT_STATE_DIR = '/var/lib/sealroot/tpm';

/** --nv-index HANDLE, or the trusted set's default index. */
export function nvIndexOption(text: string | undefined): number {
  return text === undefined ? DEFAULT_TRUST_INDEX : parseNvIndex(text);
}

export const COMMON_HELP = `  --tpm TCTI          device:/dev/tpmrm0 (default), device:/dev/tpm0, swtpm:host=H,port=P, mssim:host=H,port=P
  --state DIR         the state directory with the signed read approvals (default ${DEFAULT_STATE_DIR})
  --policy-key PEM    public half of the PCR-policy signing key (default ${DEFAULT_POLICY_KEY})
  --nv-index HANDLE   the NV index holding the trusted set (default 0x${DEFAULT_TRUST_INDEX.toString(16).padStart(8, '0')})
  --cap-pcr N         the PCR extended after the read (default ${DEFAULT_CAP_PCR}; 16 and 23 are refused: resettable)`;

export const COMMON_OPTIONS = {
  tpm: { type: 'string', default: DEFAULT_TCTI },
  state: { type: 'string', default: DEFAULT_STATE_DIR },
  'policy-key': { type: 'string' },
  'nv-index': { type: 'string' },
  'cap-pcr': { type: 'string' },
} as const;

/** Runs `body`, turning syntax errors in the options into UsageError and everything else into StepError('tpm'). */
export async function tpmStep<T>(reason: string, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (error) {
    if (error instanceof OptionError || error instanceof PcrSelectionError || error instanceof TctiSyntaxError || error instanceof DigestSyntaxError) {
      throw new UsageError(error.message);
    }
    if (error instanceof StepError || error instanceof UsageError) throw error;
    const path = error instanceof StateError || error instanceof UpdateFileError || error instanceof TrustError ? error.path : undefined;
    throw new StepError('tpm', reason, { cause: error, ...(path === undefined ? {} : { path }) });
  }
}
