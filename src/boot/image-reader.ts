// The validator's view of the sealed image memfd: the whole image as one byte array, read once.
// A composefs image is nearly all metadata and the validator touches every block of it (measured: all of them
// in a 64 MiB image), so one contiguous view with no per-read syscall or allocation is what it needs.
// The memfd is sealed, so the view is byte for byte the content the kernel will mount.
import { preadFully } from '../sys/io.ts';

export function imageView(fd: number, size: number, label?: string): Uint8Array {
  const bytes = Buffer.allocUnsafeSlow(size);
  const got = preadFully(fd, bytes, 0, label);
  if (got !== size) throw new Error(`short read of the image memfd: ${got} of ${size} bytes`);
  return bytes;
}
