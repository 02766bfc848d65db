// What ostree-prepare-root leaves under /run besides /run/ostree-booted (ostree 2026.4,
// src/switchroot/ostree-prepare-root.c and src/libostree/ostree-impl-system-generator.c):
// - /run/ostree (0755) and /run/ostree/.private (0): ostree-system-generator does nothing at all unless /run/ostree
//   exists ("If we're not booted via ostree, do nothing").
// - /run/systemd/volatile-root -> /dev/block/MAJ:MIN of the physical root, whenever composefs is the root: systemd
//   (blockdev_get_root) finds the disk behind an overlay root through it (gpt-auto, ESP automount).
// - /run/ostree/initramfs-mount-var: /var is mounted in the initramfs. ostree-system-generator unlinks it and then
//   generates nothing; without it the generator writes var.mount (a bind of /sysroot/ostree/deploy/<os>/var over
//   /var), which is how ostree itself does /var on a systemd root.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from '../log.ts';
import type { UndoStack } from '../mount/undo.ts';

/** The marker's name under <run>/ostree (INITRAMFS_MOUNT_VAR in ostree's src/switchroot/ostree-mount-util.h). */
export const INITRAMFS_MOUNT_VAR = 'initramfs-mount-var';

/** Linux's dev_t split (glibc gnu_dev_major / gnu_dev_minor). */
export function devMajorMinor(dev: bigint): { major: number; minor: number } {
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
  return { major, minor };
}

/**
 * The target of /run/systemd/volatile-root, as create_volatile_root_symlink picks it: /dev/gpt-auto-root's device
 * when that is a block device (udev resolved it in a systemd initramfs), else the device of the physical root's
 * file system; undefined when that has major 0 (ostree then asks btrfs for its device; sealroot writes nothing).
 */
export function volatileRootTarget(physicalRoot: string, devDir = '/dev'): string | undefined {
  const gpt = fs.statSync(path.join(devDir, 'gpt-auto-root'), { bigint: true, throwIfNoEntry: false });
  const dev = gpt?.isBlockDevice() === true ? gpt.rdev : fs.statSync(physicalRoot, { bigint: true }).dev;
  const { major, minor } = devMajorMinor(dev);
  return major > 0 ? `/dev/block/${major}:${minor}` : undefined;
}

function makeDir(dir: string, mode: number, undo: UndoStack): void {
  try {
    fs.mkdirSync(dir, { mode });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    if (!fs.lstatSync(dir).isDirectory()) throw new Error(`${dir} exists and is not a directory`);
    return;
  }
  fs.chmodSync(dir, mode); // mkdir's mode is cut by the umask
  undo.push(`remove ${dir}`, () => fs.rmSync(dir, { recursive: true, force: true }));
}

export interface OstreeRunStateOptions {
  runDir: string;
  physicalRoot: string;
  /** /var was bound in the initramfs: write the marker that tells ostree-system-generator not to make var.mount. */
  varMounted: boolean;
  undo: UndoStack;
  devDir?: string;
  log?: Logger;
}

/** Writes /run/ostree, /run/ostree/.private, the initramfs-mount-var marker and /run/systemd/volatile-root. */
export function writeOstreeRunState(options: OstreeRunStateOptions): void {
  const { runDir, undo, log } = options;
  const ostreeDir = path.join(runDir, 'ostree');
  makeDir(ostreeDir, 0o755, undo);
  makeDir(path.join(ostreeDir, '.private'), 0o000, undo);
  if (options.varMounted) {
    const marker = path.join(ostreeDir, INITRAMFS_MOUNT_VAR);
    fs.writeFileSync(marker, '', { mode: 0o644 });
    undo.push(`remove ${marker}`, () => fs.rmSync(marker, { force: true }));
  }
  const target = volatileRootTarget(options.physicalRoot, options.devDir);
  if (target === undefined) {
    log?.notice(`the physical root ${options.physicalRoot} has no block device (major 0): no /run/systemd/volatile-root`);
    return;
  }
  makeDir(path.join(runDir, 'systemd'), 0o755, undo);
  const link = path.join(runDir, 'systemd/volatile-root');
  try {
    fs.symlinkSync(target, link);
  } catch (error) {
    // As ostree: an existing link (written by the initramfs' own systemd) is left alone.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const existing = fs.lstatSync(link).isSymbolicLink() ? `-> ${fs.readlinkSync(link)}` : 'not a symbolic link';
    log?.notice(`${link} exists already (${existing}); left as it is`);
    return;
  }
  undo.push(`remove ${link}`, () => fs.rmSync(link, { force: true }));
}
