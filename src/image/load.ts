// The image loader: copies the composefs image into a sealed memfd while computing its fs-verity digest.
import type { Logger } from '../cli/log.ts';
import type { Digest } from '../verity/digest.ts';

export interface LoadedImage {
  /** The sealed memfd (F_SEAL_SHRINK|GROW|WRITE|SEAL); the caller closes it. */
  fd: number;
  size: number;
  digest: Digest;
  /** The seals read back from the memfd (F_GET_SEALS). */
  seals: number;
  method: 'userspace' | 'kernel-fsverity';
  compressed: boolean;
  millis: number;
}

export interface LoadImageOptions {
  path: string;
  expected: Digest;
  /** Refuse images (decompressed size for zstd) larger than this many bytes. */
  maxSize?: number;
  log?: Logger;
}

/** Throws StepError('verify-image', ...) on any mismatch or refusal; never returns an unsealed or unverified fd. */
export async function loadImage(options: LoadImageOptions): Promise<LoadedImage> {
  void options;
  throw new Error('not implemented yet');
}
