// root.image: the composefs image is a file of the initramfs (libcomposefs PR #334's use case), while the objects
// and the state stay on the physical root. The initramfs is what the boot chain measured, so its path is opened
// as is; the image is still verified as any other: its digest must be in the TPM's trusted set. The file is only
// read by the copy: once the bytes are in the sealed memfd, nothing holds the initramfs's file (the O_PATH fd is
// closed with the boot), and switch-root may free the initramfs.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { StepError } from '../errors.ts';
import { fileKind } from '../sys/confined-root.ts';
import { AT_FDCWD, O_CLOEXEC, O_PATH, openAt } from '../sys/files.ts';
import { heldImage, type OpenedImage } from './confined-open.ts';

/** Where root.image is, seen from sealroot: `configured` inside `initramfsRoot`; refused on the physical root. */
export function embeddedImagePath(configured: string, initramfsRoot: string, sysroot: string): string {
  const resolved = path.join(initramfsRoot, configured);
  const relative = path.relative(sysroot, resolved);
  if (relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative))) {
    throw new StepError('locate-root', `root.image names ${configured}, on the physical root (${sysroot}): it must be a file of the initramfs`);
  }
  return resolved;
}

/** Opens root.image O_PATH and requires a regular file; the refusal is kept for the copy step, as openImage() does. */
export function openEmbeddedImage(file: string): OpenedImage {
  let fd: number | undefined;
  let refusal: StepError | undefined;
  let size = 0;
  try {
    fd = openAt(AT_FDCWD, file, O_PATH | O_CLOEXEC);
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) refusal = new StepError('verify-image', `the image of the initramfs is ${fileKind(stat)}, not a regular file`, { path: file });
    else size = stat.size;
  } catch (error) {
    refusal = new StepError('verify-image', 'cannot open the image of the initramfs', { path: file, cause: error });
  }
  return heldImage(file, fd, refusal, size);
}
