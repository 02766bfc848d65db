// `trust sync`: keep the TPM's trusted set in step with the boot entries of the running system. For every BLS entry
// (`/boot/loader/entries/*.conf`) the layout (ostree= or composefs=) gives the image; the signed update that
// ships with it lives beside it (`<image>.trust`: `<deployment>/.ostree.cfs.trust`,
// `composefs/images/<hex>.trust`). Each image is checked (digest, size) and validated strictly before its update is
// applied, oldest version first, so that the newest versions end in the set. The TPM is written only when an
// update is not already there. Everything read here is on the disk: confined to the sysroot, bounded, typed.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Cmdline, parseCmdline } from '../config/cmdline.ts';
import type { Logger } from '../log.ts';
import { planComposefs } from '../root/composefs.ts';
import { chooseLayout } from '../root/layout.ts';
import { planOstree } from '../root/ostree.ts';
import { ConfinedRoot } from '../sys/confined-root.ts';
import { O_PATH } from '../sys/files.ts';
import { closeFd } from '../sys/io.ts';
import { readUntrustedText } from '../sys/untrusted-file.ts';
import type { Tpm } from '../tpm2/client.ts';
import type { PolicyKey } from '../tpm2/policy-key.ts';
import { formatDigest } from '../verity/digest.ts';
import { examineImage } from './image-facts.ts';
import { applyTrustUpdate, UpdateRefusedError } from './tpm-set.ts';
import { checkSigner, MAX_UPDATE_BYTES, parseUpdate, type TrustUpdate, UpdateFileError } from './update-file.ts';

/** The BLS entries, under the boot directory. */
export const ENTRIES_DIR = 'loader/entries';
export const UPDATE_SUFFIX = '.trust';
/** A BLS entry is a few hundred bytes. */
const MAX_ENTRY_BYTES = 64 * 1024;
/** More entries than any boot menu has: an attacker's directory of millions is not walked. */
const MAX_ENTRIES = 64;

export interface EntryReport {
  entry: string;
  /** What happened, one line: applied, already trusted, or why not. */
  outcome: 'applied' | 'present' | 'missing' | 'malformed' | 'unsigned' | 'refused';
  detail: string;
  version?: number;
}

/** The `options` of a BLS entry (Boot Loader Specification: `key value` lines; options may repeat). */
export function bootEntryOptions(text: string): string {
  return text.split('\n')
    .map((line) => /^\s*options\s+(.*)$/.exec(line)?.[1]?.trim())
    .filter((value): value is string => value !== undefined && value.length > 0)
    .join(' ');
}

/**
 * The image an entry names, by its layout's paths alone. How the boot assembles the root (prepare-root.conf,
 * setup-root-conf.toml of the initramfs) does not change which image an entry names, and the running system's copy
 * of those files says nothing of another sysroot's deployments (--sysroot): neutral settings, nothing read.
 */
function entryImage(root: ConfinedRoot, cmdline: Cmdline): string {
  if (chooseLayout('auto', cmdline) === 'ostree') {
    return planOstree(root, cmdline, { rootTransient: false, rootTransientReadonly: false, etcTransient: false, sysrootReadonly: true }).image;
  }
  return planComposefs(root, cmdline, { rootTransient: false, etc: 'none', var: 'none' }).image;
}

/** The error's message, with the path first unless it already names it. */
function named(file: string, error: unknown): string {
  const message = (error as Error).message;
  return message.includes(file) ? message : `${file}: ${message}`;
}

export interface SyncOptions {
  sysroot: string;
  /** Where the boot entries' /boot is: a separate partition is mounted at /boot, not under the sysroot. Default SYSROOT/boot. */
  boot?: string;
  tpm: Tpm;
  nvIndex: number;
  policyKey: PolicyKey;
  log: Logger;
}

interface Candidate {
  entry: string;
  update: TrustUpdate;
  file: string;
}

export async function syncTrust(options: SyncOptions): Promise<EntryReport[]> {
  const { log } = options;
  const root = ConfinedRoot.open(options.sysroot);
  const bootDir = options.boot ?? path.join(options.sysroot, 'boot');
  const boot = options.boot === undefined ? root : ConfinedRoot.open(options.boot);
  const reports: EntryReport[] = [];
  const candidates: Candidate[] = [];
  try {
    const entriesDir = path.join(bootDir, ENTRIES_DIR);
    let names: string[];
    try {
      names = fs.readdirSync(boot.canonical(entriesDir)).filter((name) => name.endsWith('.conf')).sort();
    } catch (error) {
      throw new Error(`cannot list the boot entries in ${entriesDir}: ${(error as Error).message}`, { cause: error });
    }
    if (names.length > MAX_ENTRIES) throw new Error(`${entriesDir} holds ${names.length} entries (at most ${MAX_ENTRIES} are read)`);
    for (const name of names) {
      const entry = path.join(entriesDir, name);
      const report = (outcome: EntryReport['outcome'], detail: string, version?: number) => {
        reports.push({ entry, outcome, detail, ...(version === undefined ? {} : { version }) });
      };
      let image: string;
      try {
        const kargs = bootEntryOptions(readUntrustedText(entry, { maxBytes: MAX_ENTRY_BYTES, under: boot }));
        image = entryImage(root, parseCmdline(kargs));
      } catch (error) {
        report('missing', `no image for this entry: ${(error as Error).message}`);
        continue;
      }
      // A removed deployment's image is missing, whatever lies beside it.
      try {
        closeFd(root.open(image, O_PATH, { followLast: false }));
      } catch (error) {
        report('missing', named(image, error));
        continue;
      }
      const file = `${image}${UPDATE_SUFFIX}`;
      let update: TrustUpdate;
      try {
        update = parseUpdate(readUntrustedText(file, { maxBytes: MAX_UPDATE_BYTES, under: root }), file);
        checkSigner(update, options.policyKey, file);
      } catch (error) {
        report('unsigned', named(file, error));
        continue;
      }
      try {
        const facts = await examineImage(image, update.image.digest);
        if (facts.size !== update.image.size) throw new Error(`the image has ${facts.size} bytes, the update signs ${update.image.size}`);
      } catch (error) {
        report('malformed', named(image, error), update.image.version);
        continue;
      }
      candidates.push({ entry, update, file });
    }
  } finally {
    if (boot !== root) boot.close();
    root.close();
  }
  // Oldest first: the newest versions are the ones left in the set.
  candidates.sort((a, b) => a.update.image.version - b.update.image.version);
  for (const { entry, update, file } of candidates) {
    const version = update.image.version;
    const what = `version ${version} (${formatDigest(update.image.digest)})`;
    try {
      const result = await applyTrustUpdate(options.tpm, update, { nvIndex: options.nvIndex, policyKey: options.policyKey, file });
      if (result.outcome === 'present') reports.push({ entry, outcome: 'present', detail: `${what} is trusted (slot ${result.slot})`, version });
      else {
        const replaced = result.replaced === 0 ? 'an empty slot' : `version ${result.replaced}`;
        log.notice(`trust: applied ${what} into slot ${result.slot}, replacing ${replaced}`);
        reports.push({ entry, outcome: 'applied', detail: `${what} applied into slot ${result.slot}, replacing ${replaced}`, version });
      }
    } catch (error) {
      if (error instanceof UpdateFileError) reports.push({ entry, outcome: 'unsigned', detail: `${file}: ${error.message}`, version });
      else if (error instanceof UpdateRefusedError) reports.push({ entry, outcome: 'refused', detail: `${what}: refused by the TPM: ${error.message}`, version });
      else throw error;
    }
  }
  return reports.sort((a, b) => a.entry.localeCompare(b.entry));
}
