// `sealroot mount`: mount a composefs image like mount.composefs, through the same verified path as the boot.
import * as path from 'node:path';
import { StepError } from '../errors.ts';
import { validateImage } from '../erofs/validate.ts';
import { loadImage } from '../image/load.ts';
import { mountComposefs, type VerityMode } from '../mount/composefs.ts';
import { copyIntoSealedMemfd } from '../mount/unverified-image.ts';
import { closeFd } from '../sys/io.ts';
import { DigestSyntaxError, formatDigest, parseDigest } from '../verity/digest.ts';
import { parseCommandArgs, UsageError, type Command } from './command.ts';

export const mountCommand: Command = {
  name: 'mount',
  summary: 'mount a composefs image (like mount.composefs), verified against --digest',
  usage: `Usage: sealroot mount [--objects DIR]... [--digest sha256:<hex>] [--verity=require|off] IMAGE MOUNTPOINT

Copies IMAGE into a sealed memfd (checking its fs-verity digest against --digest while copying), validates the
EROFS structures, attaches it to a read-only autoclear loop device, mounts it as EROFS and mounts the composefs
overlay at MOUNTPOINT (metacopy=on, redirect_dir=on, each objects DIR a data-only lower layer).

  --objects DIR      an objects directory (objects/XX/<digest rest>); repeatable, at least one
  --digest D         the image's expected fs-verity digest (sha256:<hex> or sha512:<hex>); without it the
                     image is NOT checked, and a warning says so
  --verity=MODE      require (default): every object must carry the fs-verity digest the image records, or
                     reading it fails with EIO; an image that records no digest for a file is refused before
                     mounting. off: NO object is checked; only for hosts without fs-verity
                     (never accepted by sealroot boot)

Unmount with umount MOUNTPOINT; the loop device goes away with the mount.`,
  async run(argv, { log, stdout }) {
    const { values, positionals } = parseCommandArgs(argv, {
      objects: { type: 'string', multiple: true },
      digest: { type: 'string' },
      verity: { type: 'string', default: 'require' },
    });
    if (positionals.length !== 2) throw new UsageError('expected IMAGE and MOUNTPOINT');
    // Absolute paths: the overlay keeps the layer paths as given, and mountinfo shows them.
    const [imagePath, target] = (positionals as [string, string]).map((p) => path.resolve(p)) as [string, string];
    const objectDirs = (values.objects ?? []).map((dir) => path.resolve(dir));
    if (objectDirs.length === 0) throw new UsageError('at least one --objects DIR is needed');
    if (values.verity !== 'require' && values.verity !== 'off') throw new UsageError(`--verity must be require or off, not '${values.verity}'`);
    const verity: VerityMode = values.verity;
    let expected;
    try {
      expected = values.digest === undefined ? undefined : parseDigest(values.digest);
    } catch (error) {
      if (error instanceof DigestSyntaxError) throw new UsageError(`--digest: ${error.message}`);
      throw error;
    }
    if (verity === 'off') {
      log.warn('--verity=off: object files are NOT checked against the digests in the image; '
        + 'anyone who can write the objects directory changes what this mount shows. Use it only on hosts without fs-verity.');
    }

    let image: { fd: number; size: number; bytes: Uint8Array };
    if (expected === undefined) {
      log.warn(`no --digest: the image ${imagePath} is NOT verified (it is still copied into a sealed memfd)`);
      try {
        image = copyIntoSealedMemfd(imagePath);
      } catch (error) {
        throw new StepError('load-image', 'cannot copy the image into a sealed memfd', { path: imagePath, cause: error });
      }
    } else {
      image = await loadImage({ path: imagePath, expected, log });
      log.info(`image ${imagePath} verified: ${formatDigest(expected)}`);
    }
    try {
      // verity=off reads digest-less files; verity=require would fail every read of them (refused up front).
      const summary = validateImage(image.bytes, { requireDigests: verity === 'require' });
      let mounted;
      try {
        mounted = mountComposefs({ imageFd: image.fd, objectDirs, target, verity, hasAcls: summary.hasAcls, log });
      } catch (error) {
        throw new StepError('mount-composefs', error instanceof Error ? error.message : String(error), { path: target });
      }
      stdout(`${mounted.target}: ${mounted.loopDevice}, overlay via ${mounted.overlayApi}, verity=${mounted.verity}\n`);
      return 0;
    } finally {
      closeFd(image.fd);
    }
  },
};
