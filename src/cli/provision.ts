// `sealroot provision`: store a trusted digest in the TPM's NV index (and signed approvals in the state directory).
import { approvalsPath, addApprovals, readApprovals } from '../tpm2/approvals.ts';
import { Tpm } from '../tpm2/client.ts';
import { COMMON_HELP, COMMON_OPTIONS, tpmStep } from './tpm-options.ts';
import { TPM_CC } from '../tpm2/constants.ts';
import { completePcrValues, withCapDefault, OptionError, parseAuth, parseCapPcr, parseNvIndex, parsePcrValues } from '../tpm2/options.ts';
import { parsePcrSelection, withPcr } from '../tpm2/pcr-selection.ts';
import { DEFAULT_POLICY_KEY, loadPolicyKey, loadSigner, type PolicyKey, type Signer } from '../tpm2/policy-key.ts';
import { DEFAULT_CAP_PCR, DEFAULT_NV_INDEX, expectedNvPublic, inspectIndex, makeApprovals, SealedDigestError, pcrCommandPolicy, writeSealedDigest } from '../tpm2/sealed-digest.ts';
import { nvName } from '../tpm2/structures.ts';
import { formatDigest, parseDigest } from '../verity/digest.ts';
import type { Command } from './command.ts';
import { parseCommandArgs, UsageError } from './command.ts';

export const provisionCommand: Command = {
  name: 'provision',
  summary: 'store the trusted image digest in the TPM (NV index, PCR-bound signed policy)',
  usage: `Usage: sealroot provision --digest sha256:<hex> --pcrs sha256:<list> [--pcr-value N=<hex>]... [OPTIONS]

Writes DIGEST into sealroot's NV index (defining it with the owner hierarchy if absent). The index can only be read
and written under a PCR policy approved by the policy key (TPM2_PolicyAuthorize); see src/tpm2/README.md.

With --signing-key (the private policy key: the vendor's or owner's, never on the machine at boot), provision first
signs the read and write approvals for the PCR values of the next boot (--pcr-value, else the current values) into
the state directory, and can write even when no approval fits the current PCRs (one-time PolicySigned, bound to this
TPM session and to this write). Without it, an approval already in the state directory must allow the write in the
current PCR state (the running system of a trusted boot, after the initramfs capped the cap PCR), and a read approval
for the given PCR values must exist.

  --digest D          the trusted composefs image digest (sha256:<hex> or sha512:<hex>)
  --pcrs SEL          PCRs the digest is bound to, tpm2-tools syntax (sha256:0,2,4,7); the cap PCR is added
  --pcr-value N=HEX   predicted value of PCR N for the next boot (repeatable; BANK:N=HEX for a bank);
                      the cap PCR's value before the cap defaults to zeros (its reset value), never the current one
  --signing-key PEM   private policy key: sign approvals for these PCR values and allow a first write
  --owner-auth AUTH   owner hierarchy auth for defining the index (default empty; hex:<hex> for bytes)
${COMMON_HELP}
  (with --signing-key and no --policy-key, the policy key is the signing key's public half)

Prints one line: the digest, the NV index and its name.`,
  async run(argv, { stdout, log }) {
    const { values: args } = parseCommandArgs(argv, {
      ...COMMON_OPTIONS,
      digest: { type: 'string' },
      pcrs: { type: 'string' },
      'pcr-value': { type: 'string', multiple: true, default: [] },
      'signing-key': { type: 'string' },
      'owner-auth': { type: 'string' },
    }, false);
    if (args.digest === undefined) throw new UsageError('--digest is required');
    if (args.pcrs === undefined) throw new UsageError('--pcrs is required');
    return tpmStep('cannot provision the trusted digest', async () => {
      const digest = parseDigest(args.digest!);
      const selection = parsePcrSelection(args.pcrs!);
      const capPcr = args['cap-pcr'] === undefined ? DEFAULT_CAP_PCR : parseCapPcr(args['cap-pcr']);
      const nvIndex = args['nv-index'] === undefined ? DEFAULT_NV_INDEX : parseNvIndex(args['nv-index']);
      const full = withPcr(selection, capPcr);
      const given = withCapDefault(parsePcrValues(args['pcr-value'], full), selection, capPcr);
      const signer: Signer | undefined = args['signing-key'] === undefined ? undefined : loadSigner(args['signing-key']);
      const policyKey: PolicyKey = args['policy-key'] !== undefined ? loadPolicyKey(args['policy-key'])
        : signer?.policyKey ?? loadPolicyKey(DEFAULT_POLICY_KEY);
      if (signer !== undefined && !signer.policyKey.name.equals(policyKey.name)) throw new OptionError('--signing-key is not the private half of --policy-key');
      const tpm = await Tpm.open(args.tpm);
      try {
        const values = await completePcrValues(tpm, full, given);
        const index = await inspectIndex(tpm, { nvIndex, policyKey });
        if (index.state === 'foreign') throw new SealedDigestError(`NV index 0x${nvIndex.toString(16)} exists and is not sealroot's for this policy key (${index.why}); refusing to touch it`);
        if (signer !== undefined) {
          addApprovals(args.state, makeApprovals(signer, selection, capPcr, values));
          log.info(`signed read and write approvals for ${args.pcrs} (+ cap PCR ${capPcr}) into ${approvalsPath(args.state)}`);
        }
        const approvals = readApprovals(args.state);
        const readPolicy = pcrCommandPolicy(full, values, TPM_CC.NV_Read);
        if (!approvals.some((a) => a.purpose === 'read' && a.policy.equals(readPolicy))) {
          throw new OptionError(`no read approval in ${approvalsPath(args.state)} for these PCR values: the next boot could not read the digest (sign one with sealroot approve, or give --signing-key)`);
        }
        const how = await writeSealedDigest(tpm, digest.bytes, {
          nvIndex, policyKey, selection, capPcr, approvals,
          ...(signer === undefined ? {} : { signer }),
          ...(args['owner-auth'] === undefined ? {} : { ownerAuth: parseAuth(args['owner-auth']) }),
          log: (message) => log.info(message),
        });
        const name = nvName(expectedNvPublic(nvIndex, policyKey, digest.bytes.length, true));
        log.info(`wrote the digest ${how === 'approval' ? 'under a write approval' : 'with a one-time PolicySigned authorization'}`);
        stdout(`provisioned ${formatDigest(digest)} in NV index 0x${nvIndex.toString(16).padStart(8, '0')} (name ${name.toString('hex')}) on ${tpm.description}\n`);
        return 0;
      } finally {
        await tpm.close();
      }
    });
  },
};
