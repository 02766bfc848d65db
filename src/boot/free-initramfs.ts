// After switching root, the initramfs stays in RAM until its files are deleted (the sealroot executable alone is
// ~100 MB). util-linux switch_root deletes them (recursiveRemove) when the old root is ramfs/tmpfs; so do we,
// only on that filesystem (never across a mount point), and only when the old root says it is an initramfs.
import * as fs from 'node:fs';
import * as path from 'node:path';

const RAMFS_MAGIC = 0x858458f6;
const TMPFS_MAGIC = 0x01021994;

/** Whether the current / is an initramfs whose contents may be deleted after the switch. */
export function isDisposableInitramfs(root = '/'): boolean {
  const { type } = fs.statfsSync(root);
  return (type === RAMFS_MAGIC || type === TMPFS_MAGIC) && fs.existsSync(path.join(root, 'etc/initrd-release'));
}

/**
 * Deletes everything below `dir` that lives on device `dev` (entries on other devices, i.e. mount points, and
 * everything below them are left alone). Returns the number of entries removed.
 */
export function removeTreeOnDevice(dir: string, dev: number | bigint): number {
  let removed = 0;
  for (const name of fs.readdirSync(dir)) {
    const entry = path.join(dir, name);
    const stat = fs.lstatSync(entry, { bigint: true });
    if (stat.dev !== BigInt(dev)) continue;
    if (stat.isDirectory()) {
      removed += removeTreeOnDevice(entry, dev);
      try {
        fs.rmdirSync(entry);
        removed += 1;
      } catch (error) {
        // Not empty: something below it is on another device (a mount point) and stays.
        if ((error as NodeJS.ErrnoException).code !== 'ENOTEMPTY' && (error as NodeJS.ErrnoException).code !== 'EBUSY') throw error;
      }
    } else {
      fs.unlinkSync(entry);
      removed += 1;
    }
  }
  return removed;
}
