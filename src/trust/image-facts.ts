// What the key holder (trust sign, provision) and the running system (trust sync) learn of an image before its
// digest is trusted: the digest, checked over a sealed copy, the size the boot will bound its copy by, and the
// strict EROFS validation, so that an image is validated once, when trust is granted, not only at every boot.
import { StepError } from '../errors.ts';
import { validateImage, type ImageSummary } from '../erofs/validate.ts';
import { loadImage } from '../image/load.ts';
import { closeFd } from '../sys/io.ts';
import type { Logger } from '../log.ts';
import type { Digest } from '../verity/digest.ts';

export interface ImageFacts {
  digest: Digest;
  /** Bytes of the image (decompressed, for a zstd image). */
  size: number;
  summary: ImageSummary;
}

/** Loads `path` into a sealed memfd, checks its digest is `expected`, validates it strictly; StepError otherwise. */
export async function examineImage(path: string, expected: Digest, log?: Logger): Promise<ImageFacts> {
  // A plain memfd: this copy lives only while it is checked (the boot copies the image again, into huge pages), and
  // trust sign / sync run where the huge page pool may not grow (a build host, a fragmented running system).
  const image = await loadImage({ path, expected, memory: { unswappable: 'off' }, ...(log === undefined ? {} : { log }) });
  try {
    let summary: ImageSummary;
    try {
      summary = validateImage(image.bytes);
    } catch (error) {
      // The validator names the step and the offset; this adds which file.
      if (error instanceof StepError) throw new StepError(error.step, error.reason, { path, ...(error.cause === undefined ? {} : { cause: error.cause }) });
      throw new StepError('validate-image', 'cannot validate the image', { path, cause: error });
    }
    return { digest: image.digest, size: image.size, summary };
  } finally {
    closeFd(image.fd);
  }
}
