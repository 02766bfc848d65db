// `sealroot trust sign|apply|sync`: the life of the trusted set after the first install (sealroot provision).
import * as fs from 'node:fs';
import { Tpm } from '../tpm2/client.ts';
import { OptionError } from '../tpm2/options.ts';
import { DEFAULT_POLICY_KEY, loadPolicyKey, loadSigner } from '../tpm2/policy-key.ts';
import { DEFAULT_TCTI } from '../tpm2/transport.ts';
import { DEFAULT_TRUST_INDEX } from '../trust/policies.ts';
import { checkSlotCount, checkVersion } from '../trust/record.ts';
import { syncTrust } from '../trust/sync.ts';
import { applyTrustUpdate } from '../trust/tpm-set.ts';
import { DEFAULT_SIGNED_SLOT_COUNTS, MAX_UPDATE_BYTES, parseUpdate, serializeUpdate, signUpdate } from '../trust/update-file.ts';
import { readUntrustedText } from '../sys/untrusted-file.ts';
import { formatDigest, parseDigest } from '../verity/digest.ts';
import type { Command, CommandContext } from './command.ts';
import { parseCommandArgs, UsageError } from './command.ts';
import { nvIndexOption, tpmStep } from './tpm-options.ts';
import { IMAGE_HELP, imageSizeOption } from './trust-options.ts';

const USAGE = `Usage: sealroot trust sign --signing-key PEM --digest D (--image FILE | --size BYTES) --version N --out FILE [OPTIONS]
       sealroot trust apply [--tpm T] [--policy-key PEM] [--nv-index H] FILE...
       sealroot trust sync [--sysroot DIR] [--boot DIR] [--tpm T] [--policy-key PEM] [--nv-index H]

The TPM holds a trusted SET of images (sealroot provision defines it): each image with the version the key holder
signed it for. Every change is a signed update that the TPM itself enforces: it writes one exact slot with one exact
value (PolicyCpHash) and only while that slot holds an older version (PolicyNV), so a replayed or older update is
refused by the TPM, and nothing but the key holder's signature can put an image in the set. See src/tpm2/README.md.

sign     (the key holder, when it builds the image; offline) writes an update file for DIGEST at VERSION. It is
         machine-independent (no nonce): one file serves a fleet, and it is signed for sets of --slots slots.
  --signing-key PEM   the private policy key
  --policy-key PEM    its public half, to check they match (optional)
  --digest D          the image's digest (sha256:<hex> or sha512:<hex>)
${IMAGE_HELP}
  --version N         the image's version: higher than every version it may replace
  --slots K[,K...]    slot counts to sign for (default ${DEFAULT_SIGNED_SLOT_COUNTS.join(',')}: sealroot provision --slots)
  --nv-index HANDLE   the index (default 0x${DEFAULT_TRUST_INDEX.toString(16).padStart(8, '0')})
  --out FILE          where to write the update

apply    (anyone; no key) applies update files: checks their signatures against the policy key, learns the slots'
         versions from the TPM (TPM2_PolicyNV comparisons) and writes the oldest slot. Refused with one line when the
         TPM refuses (a replayed or older update) or the file is not the key holder's.
sync     (the running system, e.g. after ostree finalizes a staged deployment, and once per boot) reads the boot
         entries (BOOT/loader/entries/*.conf: ostree= or composefs=), validates each entry's image strictly,
         checks its digest and size against the update beside it (<image>.trust: <deployment>/.ostree.cfs.trust,
         composefs/images/<hex>.trust) and applies what the TPM does not hold yet, oldest version first. One line per
         entry; exit 1 when an entry's image is missing, malformed or unsigned, or its update was refused.
  --sysroot DIR       the physical root (default /)
  --boot DIR          where the boot entries are (default SYSROOT/boot; /boot when it is its own partition)

  --tpm TCTI          device:/dev/tpmrm0 (default), swtpm:host=H,port=P, ...
  --policy-key PEM    public half of the policy key (default ${DEFAULT_POLICY_KEY})`;

async function sign(argv: string[], { stdout, log }: CommandContext): Promise<number> {
  const { values: args } = parseCommandArgs(argv, {
    'signing-key': { type: 'string' }, 'policy-key': { type: 'string' }, digest: { type: 'string' }, image: { type: 'string' },
    size: { type: 'string' }, version: { type: 'string' }, slots: { type: 'string' }, 'nv-index': { type: 'string' }, out: { type: 'string' },
  }, false);
  for (const required of ['signing-key', 'digest', 'version', 'out'] as const) {
    if (args[required] === undefined) throw new UsageError(`--${required} is required`);
  }
  return tpmStep('cannot sign the trust update', async () => {
    const digest = parseDigest(args.digest!);
    const version = checkVersion(Number(args.version));
    const slotCounts = args.slots === undefined ? DEFAULT_SIGNED_SLOT_COUNTS : args.slots.split(',').map((text) => checkSlotCount(Number(text)));
    const signer = loadSigner(args['signing-key']!);
    if (args['policy-key'] !== undefined && !loadPolicyKey(args['policy-key']).name.equals(signer.policyKey.name)) {
      throw new OptionError('--signing-key is not the private half of --policy-key');
    }
    const size = await imageSizeOption(args, digest, log);
    const update = signUpdate(signer, { version, size, digest }, nvIndexOption(args['nv-index']), slotCounts);
    fs.writeFileSync(args.out!, serializeUpdate(update), { mode: 0o644 });
    stdout(`signed version ${version} (${formatDigest(digest)}, ${size} bytes) for sets of ${slotCounts.join(', ')} slots into ${args.out}\n`);
    return 0;
  });
}

async function apply(argv: string[], { stdout }: CommandContext): Promise<number> {
  const { values: args, positionals: files } = parseCommandArgs(argv, {
    tpm: { type: 'string', default: DEFAULT_TCTI }, 'policy-key': { type: 'string' }, 'nv-index': { type: 'string' },
  });
  if (files.length === 0) throw new UsageError('no update file given');
  return tpmStep('cannot apply the trust update', async () => {
    const policyKey = loadPolicyKey(args['policy-key'] ?? DEFAULT_POLICY_KEY);
    const nvIndex = nvIndexOption(args['nv-index']);
    const updates = files.map((file) => ({ file, update: parseUpdate(readUntrustedText(file, { maxBytes: MAX_UPDATE_BYTES, under: null }), file) }))
      .sort((a, b) => a.update.image.version - b.update.image.version);
    const tpm = await Tpm.open(args.tpm);
    try {
      for (const { file, update } of updates) {
        const result = await applyTrustUpdate(tpm, update, { nvIndex, policyKey, file });
        const what = `version ${update.image.version} (${formatDigest(update.image.digest)})`;
        stdout(result.outcome === 'present'
          ? `${file}: ${what} is already trusted (slot ${result.slot})\n`
          : `${file}: ${what} applied into slot ${result.slot}, replacing ${result.replaced === 0 ? 'an empty slot' : `version ${result.replaced}`}\n`);
      }
      return 0;
    } finally {
      await tpm.close();
    }
  });
}

async function sync(argv: string[], { stdout, log }: CommandContext): Promise<number> {
  const { values: args } = parseCommandArgs(argv, {
    sysroot: { type: 'string', default: '/' }, boot: { type: 'string' }, tpm: { type: 'string', default: DEFAULT_TCTI }, 'policy-key': { type: 'string' },
    'nv-index': { type: 'string' },
  }, false);
  return tpmStep('cannot sync the trusted set', async () => {
    const policyKey = loadPolicyKey(args['policy-key'] ?? DEFAULT_POLICY_KEY);
    const tpm = await Tpm.open(args.tpm);
    try {
      const reports = await syncTrust({ sysroot: args.sysroot, ...(args.boot === undefined ? {} : { boot: args.boot }), tpm, nvIndex: nvIndexOption(args['nv-index']), policyKey, log });
      for (const report of reports) stdout(`${report.entry}: ${report.outcome}: ${report.detail}\n`);
      if (reports.length === 0) stdout('no boot entries\n');
      return reports.every((report) => report.outcome === 'applied' || report.outcome === 'present') ? 0 : 1;
    } finally {
      await tpm.close();
    }
  });
}

export const trustCommand: Command = {
  name: 'trust',
  summary: 'the trusted set after the first install: sign an update (key), apply it or sync the boot entries (no key)',
  usage: USAGE,
  async run(argv, context) {
    const [sub, ...rest] = argv;
    if (sub === 'sign') return sign(rest, context);
    if (sub === 'apply') return apply(rest, context);
    if (sub === 'sync') return sync(rest, context);
    throw new UsageError(sub === undefined ? 'trust needs a subcommand: sign, apply or sync' : `unknown trust subcommand '${sub}' (sign, apply, sync)`);
  },
};
