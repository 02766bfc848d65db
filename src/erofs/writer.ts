// Writes a composefs EROFS image (libcomposefs mkcomposefs format) from an in-memory tree.
import type { HashAlgorithm } from '../verity/digest.ts';

export interface WriteImageOptions {
  algorithm: HashAlgorithm;
}

export function writeImage(root: unknown, options: WriteImageOptions): Buffer {
  void root;
  void options;
  throw new Error('not implemented yet');
}
