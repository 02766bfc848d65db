// `sealroot mount` without --digest: the image is still copied into a sealed memfd (so what the kernel parses
// cannot change underneath it), but nothing checks which image it is. The caller says so loudly.
import * as fs from 'node:fs';
import { closeFd, writeFully } from '../sys/io.ts';
import { addSeals, IMAGE_SEALS, memfdCreate } from '../sys/memfd.ts';
import { mapReadOnly } from '../sys/mmap.ts';

export function copyIntoSealedMemfd(file: string): { fd: number; size: number; bytes: Uint8Array } {
  const fd = memfdCreate('sealroot-image');
  try {
    const source = fs.openSync(file, 'r');
    let size = 0;
    try {
      const buffer = Buffer.allocUnsafe(4 << 20);
      for (;;) {
        const n = fs.readSync(source, buffer, 0, buffer.length, null);
        if (n === 0) break;
        writeFully(fd, buffer.subarray(0, n), 'memfd:sealroot-image');
        size += n;
      }
    } finally {
      fs.closeSync(source);
    }
    addSeals(fd, IMAGE_SEALS);
    return { fd, size, bytes: mapReadOnly(fd, size, 'memfd:sealroot-image') };
  } catch (error) {
    closeFd(fd);
    throw error;
  }
}
