// The ostree layout (ostree-prepare-root.c, libotcore/otcore-prepare-root.c): `ostree=` names a symlink under the
// physical root that leads to the deployment, whose `.ostree.cfs` is the composefs image; objects are the repo's
// objects; /etc comes from the deployment, /var from the stateroot (deploy/<csum>.<serial>/../../var).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { kargValue, type Cmdline } from '../config/cmdline.ts';
import { keyFileBoolean, keyFileValue, parseKeyFile, parseTristate, type KeyFile } from './keyfile.ts';
import { LayoutError, type RootPlan } from './plan.ts';
import { UntrustedPathError, type ConfinedOpenOptions, type ConfinedRoot } from '../sys/confined-root.ts';
import { closeFd } from '../sys/io.ts';
import { readUntrustedTextIfExists } from '../sys/untrusted-file.ts';

/** Searched in this order; a later file overrides earlier keys (otcore_load_config). */
export const PREPARE_ROOT_CONF_PATHS = ['/usr/lib/ostree/prepare-root.conf', '/etc/ostree/prepare-root.conf'];
/** prepare-root.conf and setup-root-conf.toml are a few hundred bytes; anything past this is refused. */
export const MAX_LAYOUT_CONF_BYTES = 64 * 1024;

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
    // A trusted file of the initramfs, still read bounded and only if it is a regular file.
    const text = readUntrustedTextIfExists(full, { maxBytes: MAX_LAYOUT_CONF_BYTES, under: null, followLast: true });
    if (text !== undefined) parseKeyFile(text, full, file);
  }
  return file;
}

/**
 * Plans the ostree root. Every path comes from the disk (the ostree= symlink chain, the deployment, its etc, the
 * stateroot's var, the repo's objects) and is resolved inside the physical root (openat2 RESOLVE_IN_ROOT): a link
 * that climbs out or points at an absolute path stays inside, as under ostree's sysroot fd.
 */
export function planOstree(physical: ConfinedRoot, cmdline: Cmdline, config: PrepareRootConfig): RootPlan {
  const sysroot = physical.path;
  const target = kargValue(cmdline, 'ostree');
  if (target === undefined || target === '') throw new LayoutError('no ostree= karg');
  const link = physical.display(physical.relative(target.replace(/^\/+/, '') || '.'));
  const refused = (error: unknown): never => {
    if (error instanceof UntrustedPathError) throw new LayoutError(`ostree=${target}: ${error.path} ${error.reason}`);
    throw error;
  };
  let linkFd: number;
  try {
    linkFd = physical.openPath(link, { followLast: false });
  } catch (error) {
    return refused(error);
  }
  try {
    if (!fs.fstatSync(linkFd).isSymbolicLink()) throw new LayoutError(`ostree=${target}: ${link} is not a symbolic link`);
  } finally {
    closeFd(linkFd);
  }
  let deploymentFd: number;
  try {
    deploymentFd = physical.openPath(link, { directory: true });
  } catch (error) {
    return refused(error);
  }
  let deployment: string;
  try {
    deployment = physical.whereIs(deploymentFd, link);
  } finally {
    closeFd(deploymentFd);
  }
  const inside = (rel: string, options: ConfinedOpenOptions = {}) => physical.canonical(rel, options);
  const deploymentRel = physical.relative(deployment);
  // deploy/<stateroot>/deploy/<checksum>.<serial> -> deploy/<stateroot>/var (a separate /var mount may be there).
  const stateVar = inside(path.join(deploymentRel, '../../var'), { crossMounts: true });
  return {
    layout: 'ostree',
    sysroot,
    image: inside(path.join(deploymentRel, '.ostree.cfs')),
    objectDirs: [inside('ostree/repo/objects')],
    namedDigest: undefined,
    deployment,
    rootTransient: config.rootTransient,
    rootTransientReadonly: config.rootTransientReadonly,
    etc: config.etcTransient ? { kind: 'transient', lower: 'usr/etc' } : { kind: 'bind', source: inside(path.join(deploymentRel, 'etc'), { crossMounts: true }) },
    var: { kind: 'bind', source: stateVar },
    sysrootReadonly: config.sysrootReadonly,
    sysrootBindRequired: true,
    writeOstreeBooted: true,
  };
}
