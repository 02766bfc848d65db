// The composefs-rs layout (crates/composefs-setup-root): `composefs=<hex>` (64 hex: SHA-256, 128: SHA-512) names
// the image composefs/images/<hex>; objects in composefs/objects; per-deployment state in state/deploy/<hex>/;
// /usr/lib/composefs/setup-root-conf.toml chooses how /etc and /var are provided.
import * as path from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { kargValue, type Cmdline } from '../config/cmdline.ts';
import { parseDigest, type Digest } from '../verity/digest.ts';
import { LayoutError, type RootPlan, type SubdirPlan } from './plan.ts';
import { UntrustedPathError, type ConfinedRoot } from '../sys/confined-root.ts';
import { closeFd } from '../sys/io.ts';
import { readUntrustedTextIfExists } from '../sys/untrusted-file.ts';
import { isHex } from '../text/chars.ts';

export const SETUP_ROOT_CONF_PATH = '/usr/lib/composefs/setup-root-conf.toml';
/** The file is a few hundred bytes; anything past this is refused. */
export const MAX_SETUP_ROOT_CONF_BYTES = 64 * 1024;

export type SubdirMode = 'none' | 'bind' | 'overlay' | 'transient';

export interface SetupRootConfig {
  rootTransient: boolean;
  etc: SubdirMode;
  var: SubdirMode;
}

const MODES: readonly SubdirMode[] = ['none', 'bind', 'overlay', 'transient'];

function section(root: Record<string, unknown>, name: string): Record<string, unknown> {
  const value = root[name] ?? {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new LayoutError(`setup-root-conf: [${name}] must be a table`);
  return value as Record<string, unknown>;
}

function bool(table: Record<string, unknown>, where: string): boolean {
  const value = table.transient ?? false;
  if (typeof value !== 'boolean') throw new LayoutError(`setup-root-conf: ${where}.transient must be true or false`);
  return value;
}

/**
 * Pure: `[root] transient`, `[etc]`/`[var]` `mount = none|bind|overlay|transient` (or the older
 * `transient = true` when `mount` is unset). Defaults as composefs-setup-root: etc overlay, var bind.
 */
export function parseSetupRootConf(text: string): SetupRootConfig {
  let root: Record<string, unknown>;
  try {
    root = parse(text) as Record<string, unknown>;
  } catch (error) {
    if (error instanceof TomlError) throw new LayoutError(`setup-root-conf: not valid TOML: ${error.message.split('\n')[0]}`);
    throw error;
  }
  const subdir = (name: 'etc' | 'var', fallback: SubdirMode): SubdirMode => {
    const table = section(root, name);
    const mount = table.mount;
    if (mount === undefined) return bool(table, name) ? 'transient' : fallback;
    if (typeof mount !== 'string' || !(MODES as readonly string[]).includes(mount)) {
      throw new LayoutError(`setup-root-conf: ${name}.mount must be one of ${MODES.join(', ')}, not ${JSON.stringify(mount)}`);
    }
    return mount as SubdirMode;
  };
  return { rootTransient: bool(section(root, 'root'), 'root'), etc: subdir('etc', 'overlay'), var: subdir('var', 'bind') };
}

/** Reads the config from the initramfs; a missing file means the defaults (as composefs-setup-root). */
export function loadSetupRootConf(initramfsRoot = '/'): SetupRootConfig {
  const file = path.join(initramfsRoot, SETUP_ROOT_CONF_PATH);
  // A trusted file of the initramfs, still read bounded and only if it is a regular file.
  return parseSetupRootConf(readUntrustedTextIfExists(file, { maxBytes: MAX_SETUP_ROOT_CONF_BYTES, under: null, followLast: true }) ?? '');
}

/** Pure: the digest the `composefs=` karg names. A leading `?` (fs-verity optional) is refused. */
export function composefsKargDigest(cmdline: Cmdline): { hex: string; digest: Digest } {
  const value = kargValue(cmdline, 'composefs');
  if (value === undefined || value === '') throw new LayoutError('no composefs= karg');
  if (value.startsWith('?')) {
    throw new LayoutError('composefs=? (fs-verity optional) is refused: sealroot boots only with verity=require');
  }
  if (!((value.length === 64 || value.length === 128) && isHex(value))) {
    throw new LayoutError(`composefs=${value} is not a digest (64 lowercase hex for SHA-256, 128 for SHA-512)`);
  }
  return { hex: value, digest: parseDigest(value) };
}

function subdirPlan(mode: SubdirMode, name: 'etc' | 'var', physical: ConfinedRoot, state: string): SubdirPlan {
  // A /var (or /etc) mounted inside the physical root from another filesystem is allowed: crossMounts.
  const source = () => physical.canonical(path.join(physical.relative(state), name), { crossMounts: true });
  switch (mode) {
    case 'none': return { kind: 'none' };
    case 'bind': return { kind: 'bind', source: source() };
    case 'overlay': return { kind: 'overlay', state: source() };
    case 'transient': return { kind: 'transient', lower: name };
  }
}

/**
 * Plans the composefs-rs root. The state directory, the image, the objects and the etc/var sources come from the
 * disk and are resolved inside the physical root (openat2 RESOLVE_IN_ROOT): a symlink cannot lead out of it.
 */
export function planComposefs(physical: ConfinedRoot, cmdline: Cmdline, config: SetupRootConfig): RootPlan {
  const sysroot = physical.path;
  const { hex, digest } = composefsKargDigest(cmdline);
  const inside = (rel: string) => physical.canonical(rel);
  // composefs-setup-root opens the state directory whatever the modes are.
  const stateRel = path.join('state/deploy', hex);
  let stateFd: number;
  try {
    stateFd = physical.openPath(stateRel, { directory: true });
  } catch (error) {
    if (error instanceof UntrustedPathError) throw new LayoutError(`no deployment state directory ${error.path}: ${error.reason}`);
    throw error;
  }
  let state: string;
  try {
    state = physical.whereIs(stateFd, physical.display(stateRel));
  } finally {
    closeFd(stateFd);
  }
  return {
    layout: 'composefs',
    sysroot,
    image: inside(path.join('composefs/images', hex)),
    objectDirs: [inside('composefs/objects')],
    namedDigest: digest,
    deployment: state,
    rootTransient: config.rootTransient,
    rootTransientReadonly: false,
    etc: subdirPlan(config.etc, 'etc', physical, state),
    var: subdirPlan(config.var, 'var', physical, state),
    // composefs-setup-root leaves the clone writable; sealroot binds it read-only (like ostree's sysroot.readonly):
    // the booted system changes /etc and /var, and writes the physical root only through a deliberate remount.
    sysrootReadonly: true,
    sysrootBindRequired: false,
    writeOstreeBooted: false,
  };
}
