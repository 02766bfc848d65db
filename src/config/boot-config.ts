// Pure: the boot configuration, a TOML file in the initramfs (default /etc/sealroot/boot.toml). Unknown keys
// and wrong types are refused: a typo must not silently change how the root is trusted.
//
//   [digest]
//   source = "tpm"                  # "tpm" (default) or "cmdline" (the sealroot.digest= karg; needs the next key)
//   allow-unauthenticated-cmdline = false   # must be true for source = "cmdline": anyone who edits the
//                                   # bootloader entry chooses the root then. For development only.
//   [tpm]
//   tcti = "device:/dev/tpmrm0"     # tpm2-tools TCTI syntax
//   pcrs = "sha256:7"               # PCRs the trusted digest is bound to
//   state = "/etc/sealroot/tpm"     # sealroot provision/approve --state DIR. Public, signed approvals: with PCR 9
//                                   # selected keep them outside the initramfs (whose measurement they would
//                                   # change), e.g. "/sysroot/sealroot/tpm" on the physical root (read confined)
//   policy-key = "/etc/sealroot/policy-key.pem"   # optional
//   cap-pcr = 15                    # optional; the PCR extended after reading
//   [root]
//   layout = "auto"                 # "auto" (from the kargs: ostree= or composefs=), "ostree", "composefs"
//   sysroot = "/sysroot"            # where the physical root is (or gets) mounted
//   max-image-size = 1073741824     # optional, bytes
//   profile = "default"             # "sealed": refuse any persistent /etc or /var from the disk (README: threat model)
//   validate-image = "unsigned"     # the strict EROFS validation at boot: "unsigned" (default: only an image not
//                                   # from the TPM's signed set; those were validated when signed) or "always"
//   image = "/usr/lib/sealroot/root.cfs"   # optional: the image is this file of the initramfs, not the layout's
//                                   # file on the physical root (objects and state stay there); trusted as usual
//   [memory]
//   unswappable = "require"         # the image in memory that is never swapped (a hugetlb memfd): "require"
//                                   # (default: fail the boot without it), "prefer" (fall back to a plain memfd
//                                   # with a warning), "off" (a plain memfd: a writer of the swap device could
//                                   # change the mounted image)
import { parse, TomlError } from 'smol-toml';
import { isDecimal } from '../text/chars.ts';

export type DigestSource = 'tpm' | 'cmdline';
export type LayoutChoice = 'auto' | 'ostree' | 'composefs';
/**
 * "default": /etc and /var as the layout's configuration says (ostree, composefs-rs: persistent, from the disk).
 * "sealed": only the image's /etc or a transient one, and a transient (or the image's) /var; a layout that would
 * mount a persistent, unverified /etc or /var from the attacker-writable disk is refused.
 */
export type RootProfile = 'default' | 'sealed';
export type Unswappable = 'require' | 'prefer' | 'off';
/**
 * "require": the threat model has the attacker writing the whole disk, and swap (a partition or a file) is on a
 * disk; falling back to swappable memory would reopen that path silently wherever huge pages cannot be had.
 * "prefer" is for kernels without hugetlbfs, and says so on every boot (src/image/memory.ts).
 */
export const DEFAULT_UNSWAPPABLE: Unswappable = 'require';

export interface BootConfig {
  digest: { source: DigestSource };
  tpm: { tcti: string; pcrs: string; stateDir: string; policyKeyPath: string | undefined; capPcr: number | undefined };
  root: { layout: LayoutChoice; sysroot: string; maxImageSize: number | undefined; profile: RootProfile; image: string | undefined; validateImage: 'unsigned' | 'always' };
  memory: { unswappable: Unswappable };
}

export const DEFAULT_BOOT_CONFIG_PATH = '/etc/sealroot/boot.toml';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Table = Record<string, unknown>;

function isTable(value: unknown): value is Table {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

class Section {
  readonly #name: string;
  readonly #table: Table;

  constructor(root: Table, name: string, allowed: readonly string[]) {
    const value = root[name] ?? {};
    if (!isTable(value)) throw new ConfigError(`[${name}] must be a table`);
    this.#name = name;
    this.#table = value;
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key)) throw new ConfigError(`unknown key ${name}.${key} (known: ${allowed.join(', ')})`);
    }
  }

  string(key: string): string | undefined {
    const value = this.#table[key];
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || value === '') throw new ConfigError(`${this.#name}.${key} must be a non-empty string`);
    return value;
  }

  path(key: string): string | undefined {
    const value = this.string(key);
    if (value !== undefined && !value.startsWith('/')) throw new ConfigError(`${this.#name}.${key} must be an absolute path, not '${value}'`);
    return value;
  }

  oneOf<T extends string>(key: string, choices: readonly T[]): T | undefined {
    const value = this.string(key);
    if (value !== undefined && !(choices as readonly string[]).includes(value)) {
      throw new ConfigError(`${this.#name}.${key} must be one of ${choices.map((c) => `"${c}"`).join(', ')}, not "${value}"`);
    }
    return value as T | undefined;
  }

  integer(key: string, min: number, max: number): number | undefined {
    const value = this.#table[key];
    if (value === undefined) return undefined;
    const number = typeof value === 'bigint' ? Number(value) : value;
    if (typeof number !== 'number' || !Number.isInteger(number) || number < min || number > max) {
      throw new ConfigError(`${this.#name}.${key} must be an integer in ${min}..${max}`);
    }
    return number;
  }

  boolean(key: string): boolean | undefined {
    const value = this.#table[key];
    if (value === undefined) return undefined;
    if (typeof value !== 'boolean') throw new ConfigError(`${this.#name}.${key} must be true or false`);
    return value;
  }
}

/** `bank:N[,N...]` joined with `+`, banks sha1, sha256, sha384, sha512, no spaces (what tpm.pcrs takes). */
export function isPcrSelectionText(text: string): boolean {
  return text.split('+').every((part) => {
    const colon = part.indexOf(':');
    return colon > 0 && PCR_BANK_NAMES.includes(part.slice(0, colon)) && part.slice(colon + 1).split(',').every(isDecimal);
  });
}

const PCR_BANK_NAMES = ['sha1', 'sha256', 'sha384', 'sha512'];

export function parseBootConfig(text: string): BootConfig {
  let root: Table;
  try {
    root = parse(text) as Table;
  } catch (error) {
    if (error instanceof TomlError) throw new ConfigError(`not valid TOML: ${error.message.split('\n')[0]}`);
    throw error;
  }
  for (const key of Object.keys(root)) {
    if (!['digest', 'tpm', 'root', 'memory'].includes(key)) throw new ConfigError(`unknown section or key '${key}' (known: [digest], [tpm], [root], [memory])`);
  }
  const digest = new Section(root, 'digest', ['source', 'allow-unauthenticated-cmdline']);
  const tpm = new Section(root, 'tpm', ['tcti', 'pcrs', 'state', 'policy-key', 'cap-pcr']);
  const rootSection = new Section(root, 'root', ['layout', 'sysroot', 'max-image-size', 'profile', 'image', 'validate-image']);
  const memory = new Section(root, 'memory', ['unswappable']);

  const source = digest.oneOf('source', ['tpm', 'cmdline'] as const) ?? 'tpm';
  const allowCmdline = digest.boolean('allow-unauthenticated-cmdline') ?? false;
  if (source === 'cmdline' && !allowCmdline) {
    throw new ConfigError('digest.source = "cmdline" takes the trusted digest from the unauthenticated kernel command line; '
      + 'it needs digest.allow-unauthenticated-cmdline = true as well');
  }
  const pcrs = tpm.string('pcrs') ?? 'sha256:7';
  if (!isPcrSelectionText(pcrs)) {
    throw new ConfigError(`tpm.pcrs must be a PCR selection like "sha256:7,9", not "${pcrs}"`);
  }
  return {
    digest: { source },
    tpm: {
      tcti: tpm.string('tcti') ?? 'device:/dev/tpmrm0',
      pcrs,
      stateDir: tpm.path('state') ?? '/etc/sealroot/tpm',
      policyKeyPath: tpm.path('policy-key'),
      capPcr: tpm.integer('cap-pcr', 0, 23),
    },
    root: {
      layout: rootSection.oneOf('layout', ['auto', 'ostree', 'composefs'] as const) ?? 'auto',
      sysroot: rootSection.path('sysroot') ?? '/sysroot',
      maxImageSize: rootSection.integer('max-image-size', 4096, Number.MAX_SAFE_INTEGER),
      profile: rootSection.oneOf('profile', ['default', 'sealed'] as const) ?? 'default',
      image: rootSection.path('image'),
      validateImage: rootSection.oneOf('validate-image', ['unsigned', 'always'] as const) ?? 'unsigned',
    },
    memory: { unswappable: memory.oneOf('unswappable', ['require', 'prefer', 'off'] as const) ?? DEFAULT_UNSWAPPABLE },
  };
}
