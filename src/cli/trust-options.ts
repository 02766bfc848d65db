// Options the trust commands share (provision, trust sign): where the image's size comes from.
import type { Logger } from '../log.ts';
import { OptionError } from '../tpm2/options.ts';
import { examineImage } from '../trust/image-facts.ts';
import type { Digest } from '../verity/digest.ts';

export const IMAGE_HELP = `  --image FILE        the image itself: its digest must be DIGEST; it is validated strictly (EROFS) and its size
                      (decompressed, for zstd) recorded: the boot bounds its copy by it
  --size BYTES        the image's size instead of --image (no validation here, and a boot validates signed
                      images only with [root] validate-image = "always")`;

/** --image (digest checked, validated, size measured) or --size; exactly one. */
export async function imageSizeOption(args: { image?: string | undefined; size?: string | undefined }, digest: Digest, log: Logger): Promise<number> {
  if ((args.image === undefined) === (args.size === undefined)) throw new OptionError('give --image FILE or --size BYTES (one of them)');
  if (args.size !== undefined) {
    const size = Number(args.size);
    if (!Number.isSafeInteger(size) || size <= 0) throw new OptionError(`--size: not a positive whole number: '${args.size}'`);
    // The boot does not validate signed images again (unless [root] validate-image = "always"): say it plainly.
    log.warn('the image was not validated (--size instead of --image): boots validate it only with [root] validate-image = "always"');
    return size;
  }
  const facts = await examineImage(args.image!, digest, log);
  log.info(`${args.image}: ${facts.size} bytes, digest checked, validated (${facts.summary.inodes} inodes)`);
  return facts.size;
}
