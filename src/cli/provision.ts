// `sealroot provision`: first install: define the trusted-set index and trust one image at version 1.
import { addApprovals, approvalsPath } from '../tpm2/approvals.ts';
import { DEFAULT_CAP_PCR, makeReadApproval } from '../tpm2/approved-policy.ts';
import { Tpm } from '../tpm2/client.ts';
import { completePcrValues, withCapDefault, OptionError, parseAuth, parseCapPcr, parsePcrValues } from '../tpm2/options.ts';
import { parsePcrSelection, withPcr } from '../tpm2/pcr-selection.ts';
import { loadPolicyKey, loadSigner } from '../tpm2/policy-key.ts';
import { TRUST_POLICY_REF, trustIndexName } from '../trust/policies.ts';
import { checkVersion, DEFAULT_SLOTS, recordSize } from '../trust/record.ts';
import { describeSet } from '../trust/boot-read.ts';
import { provisionTrustedSet } from '../trust/tpm-set.ts';
import { formatDigest, parseDigest } from '../verity/digest.ts';
import { COMMON_HELP, COMMON_OPTIONS, nvIndexOption, tpmStep } from './tpm-options.ts';
import { imageSizeOption, IMAGE_HELP } from './trust-options.ts';
import type { Command } from './command.ts';
import { parseCommandArgs, UsageError } from './command.ts';

export const provisionCommand: Command = {
  name: 'provision',
  summary: 'first install: define the TPM trusted set and trust one image (needs the private policy key)',
  usage: `Usage: sealroot provision --signing-key PEM --digest sha256:<hex> (--image FILE | --size BYTES) --pcrs sha256:<list> [--pcr-value N=<hex>]... [OPTIONS]

First install. Defines sealroot's NV index (owner hierarchy) holding a trusted SET of images (--slots slots, default
${DEFAULT_SLOTS}: the current deployment and the previous one), and trusts DIGEST at --version (default 1) through a
one-time PolicySigned authorization bound to this TPM session's nonce and to this exact write: it needs the private
policy key, cannot be replayed and is not stored. It also signs the read approval for the PCR values of the next
boot (--pcr-value, else the current values) into the state directory.

Later images are trusted with signed update files (sealroot trust sign / trust apply); no key-less write exists.
An index that is already provisioned, or is not sealroot's, is refused. See src/tpm2/README.md.

  --signing-key PEM   the private policy key (the vendor's or owner's; never on the machine at boot)
  --digest D          the trusted composefs image digest (sha256:<hex> or sha512:<hex>)
${IMAGE_HELP}
  --version N         the image's version (default 1); updates must carry higher versions
  --slots K           how many images the set holds (${DEFAULT_SLOTS} to 6; default ${DEFAULT_SLOTS})
  --pcrs SEL          PCRs the read is bound to, tpm2-tools syntax (sha256:0,2,4,7); the cap PCR is added
  --pcr-value N=HEX   predicted value of PCR N for the next boot (repeatable; BANK:N=HEX for a bank);
                      the cap PCR's value before the cap defaults to zeros (its reset value), never the current one
  --owner-auth AUTH   owner hierarchy auth for defining the index (default empty; hex:<hex> for bytes)
${COMMON_HELP}
  (with no --policy-key, the policy key is the signing key's public half)

Prints one line: the set, the NV index and its name.`,
  async run(argv, { stdout, log }) {
    const { values: args } = parseCommandArgs(argv, {
      ...COMMON_OPTIONS,
      digest: { type: 'string' },
      image: { type: 'string' },
      size: { type: 'string' },
      version: { type: 'string' },
      slots: { type: 'string' },
      pcrs: { type: 'string' },
      'pcr-value': { type: 'string', multiple: true, default: [] },
      'signing-key': { type: 'string' },
      'owner-auth': { type: 'string' },
    }, false);
    if (args['signing-key'] === undefined) throw new UsageError('--signing-key is required (first install; later images: sealroot trust sign / trust apply)');
    if (args.digest === undefined) throw new UsageError('--digest is required');
    if (args.pcrs === undefined) throw new UsageError('--pcrs is required');
    return tpmStep('cannot provision the trusted set', async () => {
      const digest = parseDigest(args.digest!);
      const version = args.version === undefined ? 1 : checkVersion(Number(args.version));
      const slots = args.slots === undefined ? DEFAULT_SLOTS : Number(args.slots);
      const selection = parsePcrSelection(args.pcrs!);
      const capPcr = args['cap-pcr'] === undefined ? DEFAULT_CAP_PCR : parseCapPcr(args['cap-pcr']);
      const nvIndex = nvIndexOption(args['nv-index']);
      const full = withPcr(selection, capPcr);
      const given = withCapDefault(parsePcrValues(args['pcr-value'], full), selection, capPcr);
      const signer = loadSigner(args['signing-key']!);
      const policyKey = args['policy-key'] === undefined ? signer.policyKey : loadPolicyKey(args['policy-key']);
      if (!signer.policyKey.name.equals(policyKey.name)) throw new OptionError('--signing-key is not the private half of --policy-key');
      const size = await imageSizeOption(args, digest, log);
      const tpm = await Tpm.open(args.tpm);
      try {
        const values = await completePcrValues(tpm, full, given);
        addApprovals(args.state, [makeReadApproval(signer, selection, capPcr, values, TRUST_POLICY_REF)]);
        log.info(`signed the read approval for ${args.pcrs} (+ cap PCR ${capPcr}) into ${approvalsPath(args.state)}`);
        const set = await provisionTrustedSet(tpm, { version, size, digest }, {
          nvIndex, policyKey, signer, slots,
          ...(args['owner-auth'] === undefined ? {} : { ownerAuth: parseAuth(args['owner-auth']) }),
          log: (message) => log.info(message),
        });
        const name = trustIndexName(nvIndex, policyKey, recordSize(digest.algorithm, slots), true);
        stdout(`provisioned the trusted set (${describeSet(set)}; ${slots} slots) in NV index 0x${nvIndex.toString(16).padStart(8, '0')} (name ${name.toString('hex')}) on ${tpm.description}\n`);
        log.info(`trusted ${formatDigest(digest)} at version ${version}`);
        return 0;
      } finally {
        await tpm.close();
      }
    });
  },
};
