// Builds the new root around the mounted composefs (at `staging`) and puts it in place of the physical root:
//   physical root bound at <newroot>/sysroot (read-only if configured) ->
//   /etc and /var as planned -> /run/ostree-booted -> the physical root's mount point now shows the new root.
// Every change is recorded on the caller's UndoStack, so a failure leaves nothing mounted.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { oneLine, SysError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { createDetachedMount } from '../mount/fs-context.ts';
import { escapeOverlayPath, type FsParam, type VerityMode } from '../mount/overlay-options.ts';
import type { UndoStack } from '../mount/undo.ts';
import { closeFd } from '../sys/io.ts';
import {
  MNT_DETACH, MOUNT_ATTR_RDONLY, mount, moveMountPath, moveMountTo, moveMountToFd, mountSetattrTree, openTreeClone, openTreeCloneFd, umount2,
} from '../sys/mountapi.ts';
import { ConfinedRoot, fdPath, UntrustedPathError } from '../sys/confined-root.ts';
import { AT_FDCWD, makeDirAt, O_DIRECTORY, O_NOFOLLOW, O_PATH } from '../sys/files.ts';
import { openAt2, RESOLVE_BENEATH, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, RESOLVE_NO_XDEV } from '../sys/openat2.ts';
import { encodeBootedMetadata, type BootedValue } from './ostree-booted.ts';
import { writeOstreeRunState } from './ostree-run.ts';
import type { RootPlan, SubdirPlan } from './plan.ts';

/** Propagation types (include/uapi/linux/mount.h). */
const MS_SLAVE = 0x80000;
const MS_SHARED = 0x100000;

export interface AssembleOptions {
  plan: RootPlan;
  /** Where the composefs root is mounted (a directory under runDir). */
  staging: string;
  /** The tmpfs for transient upper layers and /run/ostree-booted (default /run). */
  runDir: string;
  undo: UndoStack;
  /** The verity mode the composefs was mounted with (recorded in /run/ostree-booted). */
  verity: VerityMode;
  log?: Logger;
}

function attach(fd: number, target: string, undo: UndoStack, what: string): void {
  try {
    moveMountTo(fd, target);
  } finally {
    closeFd(fd);
  }
  undo.push(`unmount ${what} (${target})`, () => umount2(target, MNT_DETACH));
}

function makeDirs(undo: UndoStack, ...dirs: string[]): void {
  for (const dir of dirs) {
    if (fs.existsSync(dir)) continue;
    const first = fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    if (first !== undefined) undo.push(`remove ${first}`, () => fs.rmSync(first, { recursive: true, force: true }));
  }
}

/** A writable overlay over `lower`, attached on `target` (stacked when target === lower). */
function writableOverlay(lower: string, upper: string, work: string, target: string, source: string, undo: UndoStack): void {
  const params: FsParam[] = [
    { kind: 'string', key: 'source', value: source },
    // One lowerdir string: the lower layer is a plain directory (no data-only layers), fine on every kernel >= 3.18.
    { kind: 'string', key: 'lowerdir', value: escapeOverlayPath(lower) },
    { kind: 'string', key: 'upperdir', value: upper },
    { kind: 'string', key: 'workdir', value: work },
  ];
  attach(createDetachedMount('overlay', params, 0), target, undo, `${source} overlay`);
}

/**
 * An O_PATH fd of the directory `source` on the physical root, resolved inside it (RESOLVE_IN_ROOT; a mount point
 * inside it may be crossed: a separate /var partition). The caller mounts from the fd, so the path is never walked
 * again after this check.
 */
function openSourceDir(source: string, what: string): number {
  const root = ConfinedRoot.containing(source);
  if (root === undefined) throw new Error(`${what}: ${source} is not under the physical root`);
  try {
    return root.openPath(source, { directory: true, crossMounts: true });
  } catch (error) {
    if (error instanceof UntrustedPathError) throw new Error(`${what}: ${error.path} ${error.reason}`);
    throw error;
  }
}

/** A detached, writable clone of the directory `source` on the physical root (checked on its fd). */
function writableClone(source: string, what: string): number {
  const sourceFd = openSourceDir(source, what);
  let fd: number;
  try {
    fd = openTreeCloneFd(sourceFd, false, source);
  } finally {
    closeFd(sourceFd);
  }
  try {
    // Like ostree's MS_REMOUNT of the bind without MS_RDONLY: writable even when the sysroot bind is not.
    mountSetattrTree(fd, 0, MOUNT_ATTR_RDONLY, false, source);
  } catch (error) {
    closeFd(fd);
    throw error;
  }
  return fd;
}

function bindWritable(source: string, target: string, undo: UndoStack, what: string): void {
  attach(writableClone(source, what), target, undo, what);
}

/**
 * The writable clone of the stateroot's var (`source`, on the physical root) moved onto the same directory inside
 * the physical root's bind at `sysrootTarget`. The mount point is opened beneath that bind without following any
 * symlink (the disk is attacker-written): the clone lands on exactly that directory.
 */
function bindStaterootVar(source: string, physicalRoot: string, sysrootTarget: string, undo: UndoStack): void {
  const what = 'the stateroot var in /sysroot';
  const shown = path.join(sysrootTarget, path.relative(physicalRoot, source));
  const baseFd = openAt2(AT_FDCWD, sysrootTarget, O_PATH | O_DIRECTORY, 0);
  let targetFd: number;
  try {
    targetFd = openAt2(baseFd, path.relative(physicalRoot, source), O_PATH | O_DIRECTORY, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
  } catch (error) {
    if (error instanceof SysError) throw new Error(`${what}: ${shown}: ${error.code === 'ENOTDIR' || error.code === 'ELOOP' ? 'is not a directory (a symlink or a file is refused)' : `cannot open (${error.code})`}`);
    throw error;
  } finally {
    closeFd(baseFd);
  }
  try {
    const fd = writableClone(source, what);
    try {
      moveMountToFd(fd, targetFd, shown);
    } finally {
      closeFd(fd);
    }
  } finally {
    closeFd(targetFd);
  }
  undo.push(`unmount ${what} (${shown})`, () => umount2(shown, MNT_DETACH));
}

/** The directory `name` right beneath `dirFd` (made 0700 if missing), as an O_PATH fd; a symlink there is refused. */
function subdirBeneath(dirFd: number, name: string, shown: string): number {
  const resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  try {
    makeDirAt(dirFd, name, 0o700);
  } catch (error) {
    throw new Error(`${shown}: cannot create: ${oneLine(error)}`);
  }
  try {
    return openAt2(dirFd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW, resolve);
  } catch (error) {
    if (error instanceof SysError) throw new Error(`${shown}: ${error.code === 'ENOTDIR' || error.code === 'ELOOP' ? 'is not a directory (a symlink or a file is refused)' : `cannot open (${error.code})`}`);
    throw error;
  }
}

function provideSubdir(name: 'etc' | 'var', plan: SubdirPlan, options: AssembleOptions): string {
  const { staging, runDir, undo } = options;
  const target = path.join(staging, name);
  switch (plan.kind) {
    case 'none':
      return 'from the image';
    case 'bind':
      bindWritable(plan.source, target, undo, `/${name}`);
      return `bind ${plan.source}`;
    case 'overlay': {
      const upper = path.join(plan.state, 'upper');
      const stateFd = openSourceDir(plan.state, `/${name} state`);
      const fds: number[] = [];
      try {
        // upper and work are opened beneath the state fd (no symlink, no mount crossed) and given to overlayfs as
        // /proc/self/fd/N: the kernel takes exactly those directories.
        for (const dir of ['upper', 'work']) fds.push(subdirBeneath(stateFd, dir, path.join(plan.state, dir)));
        writableOverlay(target, fdPath(fds[0]!), fdPath(fds[1]!), target, 'overlay', undo);
      } finally {
        for (const fd of [...fds, stateFd]) closeFd(fd);
      }
      return `overlay, upper ${upper}`;
    }
    case 'transient': {
      const dirs = transientDirs(runDir, name, undo);
      writableOverlay(path.join(staging, plan.lower), dirs.upperdir, dirs.workdir, target, 'transient', undo);
      return `transient overlay over /${plan.lower}, upper ${dirs.upperdir}`;
    }
  }
}

/** Upper and work directories of a transient layer, on the run tmpfs (as ostree's /run/ostree/.private/root). */
export function transientDirs(runDir: string, name: string, undo: UndoStack): { upperdir: string; workdir: string } {
  const base = path.join(runDir, 'sealroot/transient', name);
  makeDirs(undo, path.join(base, 'upper'), path.join(base, 'work'));
  return { upperdir: path.join(base, 'upper'), workdir: path.join(base, 'work') };
}

/** Sets up everything below `staging` (root.transient is not done here: the composefs overlay gets the upper layer). */
export function assembleRoot(options: AssembleOptions): void {
  const { plan, staging, runDir, undo, log } = options;
  const sysrootTarget = path.join(staging, 'sysroot');
  if (fs.statSync(sysrootTarget, { throwIfNoEntry: false })?.isDirectory()) {
    const fd = openTreeClone(plan.sysroot, true);
    try {
      if (plan.sysrootReadonly) mountSetattrTree(fd, MOUNT_ATTR_RDONLY, 0, true, plan.sysroot);
    } catch (error) {
      closeFd(fd);
      throw error;
    }
    attach(fd, sysrootTarget, undo, 'the physical root');
    log?.info(`physical root ${plan.sysroot} bound at /sysroot (${plan.sysrootReadonly ? 'read-only' : 'writable'})`);
    if (plan.layout === 'ostree' && plan.sysrootReadonly && plan.var.kind === 'bind') {
      // ostree-prepare-root: with a read-only sysroot, the stateroot's var gets a writable bind onto itself, so
      // /sysroot/ostree/deploy/<os>/var stays writable (and a var.mount made from it would be too).
      bindStaterootVar(plan.var.source, plan.sysroot, sysrootTarget, undo);
    }
  } else if (plan.sysrootBindRequired) {
    throw new Error(`the new root has no /sysroot directory to bind the physical root on`);
  } else {
    log?.notice('the new root has no /sysroot directory: the physical root is not bound in it');
  }

  const etc = provideSubdir('etc', plan.etc, options);
  const var_ = provideSubdir('var', plan.var, options);
  log?.info(`/etc: ${etc}; /var: ${var_}`);

  if (plan.writeOstreeBooted) {
    if (plan.var.kind === 'bind') {
      // As ostree-prepare-root's initramfs /var: slave then shared, so submounts of /var do not propagate into the
      // stateroot's var (ostree issue 2086).
      const target = path.join(staging, 'var');
      mount(null, target, null, MS_SLAVE, null);
      mount(null, target, null, MS_SHARED, null);
    }
    writeOstreeRunState({ runDir, physicalRoot: plan.sysroot, varMounted: plan.var.kind === 'bind', undo, log });
    const deploymentFd = openSourceDir(plan.deployment, 'the deployment');
    let stat: fs.BigIntStats;
    try {
      stat = fs.fstatSync(deploymentFd, { bigint: true });
    } finally {
      closeFd(deploymentFd);
    }
    const entries: [string, BootedValue][] = [
      ['backing-root-device-inode', { type: '(tt)', value: [stat.dev, stat.ino] }],
      ['root.transient', { type: 'b', value: plan.rootTransient }],
      ['root.transient-ro', { type: 'b', value: plan.rootTransientReadonly }],
      ['composefs', { type: 'b', value: true }],
      ['composefs.verity', { type: 'b', value: options.verity === 'require' }],
      ['sysroot-ro', { type: 'b', value: plan.sysrootReadonly }],
    ];
    if (plan.etc.kind === 'transient') entries.push(['transient-etc', { type: 's', value: path.join(runDir, 'sealroot/transient/etc') }]);
    const marker = path.join(runDir, 'ostree-booted');
    fs.writeFileSync(marker, encodeBootedMetadata(entries));
    undo.push(`remove ${marker}`, () => fs.rmSync(marker, { force: true }));
  }
}

/** Replaces the mount at `sysroot` (the physical root) by the tree at `staging`; `sysrootIsMount` false: mounts over the directory. */
export function replaceSysroot(staging: string, sysroot: string, sysrootIsMount: boolean, undo: UndoStack): void {
  if (sysrootIsMount) umount2(sysroot, MNT_DETACH);
  moveMountPath(staging, sysroot);
  undo.push(`unmount the new root at ${sysroot}`, () => umount2(sysroot, MNT_DETACH));
}
