// The ostree layout (ostree-prepare-root.c, libotcore/otcore-prepare-root.c): `ostree=` names a symlink under the
// physical root that leads to the deployment, whose `.ostree.cfs` is the composefs image; objects are the repo's
// objects; /etc comes from the deployment, /var from the stateroot (deploy/<csum>.<serial>/../../var).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { kargValue, type Cmdline } from '../config/cmdline.ts';
import { keyFileBoolean, keyFileValue, parseKeyFile, parseTristate, type KeyFile } from './keyfile.ts';
import { LayoutError, type RootPlan } from './plan.ts';
import { resolveUnder } from './resolve-under.ts';

/** Searched in this order; a later file overrides earlier keys (otcore_load_config). */
export const PREPARE_ROOT_CONF_PATHS = ['/usr/lib/ostree/prepare-root.conf', '/etc/ostree/prepare-root.conf'];

export interface PrepareRootConfig {
  /** root.transient or root.transient-ro: an upper layer on the /run tmpfs over the composefs root. */
  rootTransient: boolean;
  /** root.transient-ro: that overlay is mounted read-only (privileged code may remount it writable). */
  rootTransientReadonly: boolean;
  etcTransient: boolean;
  sysrootReadonly: boolean;
}

/**
 * Pure: the prepare-root.conf keys sealroot honours. sealroot only ever mounts a verified composefs root, so
 * composefs.enabled=no (in the file or by the `ostree.prepare-root.composefs` karg) is refused, not obeyed;
 * yes, maybe, verity and signed all mean composefs here (the digest is checked against the TPM either way).
 */
export function interpretPrepareRootConf(file: KeyFile, cmdline: Cmdline): PrepareRootConfig {
  const enabled = keyFileValue(file, 'composefs', 'enabled') ?? 'no';
  const fromFile = enabled === 'signed' || enabled === 'verity' ? 'yes' : parseTristate(enabled, 'composefs.enabled');
  const karg = kargValue(cmdline, 'ostree.prepare-root.composefs');
  const effective = karg === undefined ? fromFile : karg === 'signed' ? 'yes' : parseTristate(karg, 'ostree.prepare-root.composefs=');
  if (effective === 'no') {
    throw new LayoutError(`composefs is disabled (${karg === undefined ? `composefs.enabled=${enabled} in prepare-root.conf` : `ostree.prepare-root.composefs=${karg}`}): `
      + 'sealroot mounts only a verified composefs root');
  }
  const transient = keyFileBoolean(file, 'root', 'transient', false);
  // otcore_load_rootfs_config (ostree 2026): both set is an error; transient-ro implies transient.
  const transientRo = keyFileBoolean(file, 'root', 'transient-ro', false);
  if (transient && transientRo) throw new LayoutError('prepare-root.conf: cannot set both root.transient and root.transient-ro');
  return {
    rootTransient: transient || transientRo,
    rootTransientReadonly: transientRo,
    etcTransient: keyFileBoolean(file, 'etc', 'transient', false),
    // composefs enabled makes sysroot.readonly default to true (ostree-prepare-root.c).
    sysrootReadonly: keyFileBoolean(file, 'sysroot', 'readonly', true),
  };
}

/** Reads prepare-root.conf from the initramfs (`initramfsRoot`, default /), as ostree does. */
export function loadPrepareRootConf(initramfsRoot = '/'): KeyFile {
  const file: KeyFile = new Map();
  for (const conf of PREPARE_ROOT_CONF_PATHS) {
    const full = path.join(initramfsRoot, conf);
    let text: string;
    try {
      text = fs.readFileSync(full, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    parseKeyFile(text, full, file);
  }
  return file;
}

export function planOstree(sysroot: string, cmdline: Cmdline, config: PrepareRootConfig): RootPlan {
  const target = kargValue(cmdline, 'ostree');
  if (target === undefined || target === '') throw new LayoutError('no ostree= karg');
  const link = path.join(sysroot, target);
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(link);
  } catch {
    throw new LayoutError(`ostree=${target}: ${link} does not exist`);
  }
  if (!stat.isSymbolicLink()) throw new LayoutError(`ostree=${target}: ${link} is not a symbolic link`);
  const deployment = resolveUnder(sysroot, target);
  if (!fs.statSync(deployment).isDirectory()) throw new LayoutError(`ostree=${target} resolves to ${deployment}, not a directory`);
  const inside = (rel: string) => resolveUnder(sysroot, rel, { allowMissing: true });
  const deploymentRel = path.relative(sysroot, deployment);
  // deploy/<stateroot>/deploy/<checksum>.<serial> -> deploy/<stateroot>/var
  const stateVar = inside(path.join(deploymentRel, '../../var'));
  return {
    layout: 'ostree',
    sysroot,
    image: inside(path.join(deploymentRel, '.ostree.cfs')),
    objectDirs: [inside('ostree/repo/objects')],
    namedDigest: undefined,
    deployment,
    rootTransient: config.rootTransient,
    rootTransientReadonly: config.rootTransientReadonly,
    etc: config.etcTransient ? { kind: 'transient', lower: 'usr/etc' } : { kind: 'bind', source: inside(path.join(deploymentRel, 'etc')) },
    var: { kind: 'bind', source: stateVar },
    sysrootReadonly: config.sysrootReadonly,
    sysrootBindRequired: true,
    writeOstreeBooted: true,
  };
}
