// `sealroot unseal`: print the authenticated trusted set from the TPM, a digest a line (and cap the PCR with --cap).
import { COMMON_HELP, COMMON_OPTIONS, nvIndexOption, tpmStep } from './tpm-options.ts';
import { parseCapPcr } from '../tpm2/options.ts';
import { parsePcrSelection } from '../tpm2/pcr-selection.ts';
import { DEFAULT_CAP_PCR } from '../tpm2/approved-policy.ts';
import { describeSet, type ReadTrustOptions, readTrust, readTrustAndCap } from '../trust/boot-read.ts';
import { members } from '../trust/record.ts';
import { parseTcti } from '../tpm2/transport.ts';
import { formatDigest } from '../verity/digest.ts';
import type { Command } from './command.ts';
import { parseCommandArgs, UsageError } from './command.ts';

export const unsealCommand: Command = {
  name: 'unseal',
  summary: 'print the trusted image digests read from the TPM (authenticated, PCR-bound), newest first',
  usage: `Usage: sealroot unseal --pcrs sha256:<list> [--cap] [OPTIONS]

Checks that sealroot's NV index has the expected name (public area: attributes and PolicyAuthorize policy for the
policy key), satisfies its policy with PolicyPCR + PolicyCommandCode(NV_Read) + PolicyAuthorize using a signed
approval from the state directory, reads the trusted set and prints each trusted digest on a line of its own, newest
version first (sha256:<hex>, or sha512:<hex>; the versions go to the log on stderr). Exit 1 with one line otherwise.

  --pcrs SEL          PCRs the digest is bound to, tpm2-tools syntax (sha256:0,2,4,7); the cap PCR is added
  --cap               afterwards extend the cap PCR, whether the read succeeded or not: no second read this boot
${COMMON_HELP}`,
  async run(argv, { stdout, log }) {
    const { values: args } = parseCommandArgs(argv, { ...COMMON_OPTIONS, pcrs: { type: 'string' }, cap: { type: 'boolean', default: false } }, false);
    if (args.pcrs === undefined) throw new UsageError('--pcrs is required');
    const options: ReadTrustOptions = await tpmStep('cannot read the trusted set', async () => {
      parseTcti(args.tpm);
      parsePcrSelection(args.pcrs!);
      return {
        tcti: args.tpm, pcrs: args.pcrs!, stateDir: args.state, log,
        capPcr: args['cap-pcr'] === undefined ? DEFAULT_CAP_PCR : parseCapPcr(args['cap-pcr']),
        nvIndex: nvIndexOption(args['nv-index']),
        ...(args['policy-key'] === undefined ? {} : { policyKeyPath: args['policy-key'] }),
      };
    });
    const set = args.cap ? await readTrustAndCap(options) : await readTrust(options);
    log.notice(`trusted set: ${describeSet(set)}`);
    for (const image of members(set)) stdout(`${formatDigest(image.digest)}\n`);
    return 0;
  },
};
