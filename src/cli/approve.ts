// `sealroot approve`: the vendor's offline job: sign the read approval for one boot chain's PCR values.
import { addApprovals, approvalsPath } from '../tpm2/approvals.ts';
import { Tpm } from '../tpm2/client.ts';
import { tpmStep } from './tpm-options.ts';
import { completePcrValues, withCapDefault, parseCapPcr, parsePcrValues } from '../tpm2/options.ts';
import { parsePcrSelection, withPcr } from '../tpm2/pcr-selection.ts';
import { loadSigner } from '../tpm2/policy-key.ts';
import { DEFAULT_CAP_PCR, makeReadApproval } from '../tpm2/approved-policy.ts';
import { TRUST_POLICY_REF } from '../trust/policies.ts';
import type { Command } from './command.ts';
import { parseCommandArgs, UsageError } from './command.ts';

export const approveCommand: Command = {
  name: 'approve',
  summary: 'sign the PCR-bound read approval for a boot chain into a state directory (offline, private key)',
  usage: `Usage: sealroot approve --signing-key PEM --pcrs sha256:<list> [--pcr-value N=<hex>]... --state DIR [--tpm TCTI] [--cap-pcr N]

Signs, with the private policy key, the approval for reading the trusted set in the PCR state a boot chain
produces (PCRs as given, cap PCR before the cap, TPM2_NV_Read). It is added to DIR/approvals.json, which machines
may read from untrusted storage. There are no write approvals: new images are trusted by signed updates (sealroot
trust sign). Values not
given with --pcr-value are read from the TPM named by --tpm (the cap PCR: zeros, its reset value); with every
value given, no TPM is used.

  --signing-key PEM   the private PCR-policy key (keep it offline)
  --pcrs SEL          PCR selection, tpm2-tools syntax; the cap PCR is added
  --pcr-value N=HEX   a predicted PCR value (repeatable; BANK:N=HEX for a bank); the cap PCR defaults to zeros
  --state DIR         where approvals.json is written
  --tpm TCTI          TPM for the values not given
  --cap-pcr N         the cap PCR (default ${DEFAULT_CAP_PCR})`,
  async run(argv, { stdout }) {
    const { values: args } = parseCommandArgs(argv, {
      'signing-key': { type: 'string' }, pcrs: { type: 'string' }, 'pcr-value': { type: 'string', multiple: true, default: [] },
      state: { type: 'string' }, tpm: { type: 'string' }, 'cap-pcr': { type: 'string' },
    }, false);
    if (args['signing-key'] === undefined || args.pcrs === undefined || args.state === undefined) throw new UsageError('--signing-key, --pcrs and --state are required');
    return tpmStep('cannot sign approvals', async () => {
      const selection = parsePcrSelection(args.pcrs!);
      const capPcr = args['cap-pcr'] === undefined ? DEFAULT_CAP_PCR : parseCapPcr(args['cap-pcr']);
      const full = withPcr(selection, capPcr);
      const given = withCapDefault(parsePcrValues(args['pcr-value'], full), selection, capPcr);
      const signer = loadSigner(args['signing-key']!);
      const tpm = args.tpm === undefined ? undefined : await Tpm.open(args.tpm);
      try {
        const values = await completePcrValues(tpm, full, given);
        const approvals = [makeReadApproval(signer, selection, capPcr, values, TRUST_POLICY_REF)];
        addApprovals(args.state!, approvals);
        for (const a of approvals) stdout(`${a.purpose} ${a.policy.toString('hex')} ${a.pcrs}\n`);
        stdout(`written to ${approvalsPath(args.state!)}\n`);
        return 0;
      } finally {
        await tpm?.close();
      }
    });
  },
};
