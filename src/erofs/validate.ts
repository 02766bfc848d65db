// Strict reader of a composefs EROFS image, run by the agent before the kernel ever parses it.
import { StepError } from '../errors.ts';

export interface ImageSummary {
  hasAcls: boolean;
  isComposefs: boolean;
  inodes: number;
  blockSize: number;
}

/** Reads the image through `read(offset, length)` (must return exactly `length` bytes) and checks every structure. */
export function validateImage(read: (offset: number, length: number) => Buffer, size: number): ImageSummary {
  void read;
  void size;
  throw new StepError('validate-image', 'not implemented yet');
}
