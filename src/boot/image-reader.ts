// The validator's view of the sealed image memfd: reads served from 64 KiB chunks, each read from the memfd
// at most once. The validator makes ~100k small reads on a large image; one pread per read costs more than the
// validation itself, and reading the whole image up front copies bytes the validator never looks at.
// The memfd is sealed, so a cached chunk is the byte-for-byte content the kernel will mount.
import { preadFully } from '../sys/io.ts';

const CHUNK = 64 << 10;

export function chunkedReader(fd: number, size: number, label?: string): (offset: number, length: number) => Buffer {
  const chunks = new Map<number, Buffer>();
  const chunk = (index: number): Buffer => {
    let buffer = chunks.get(index);
    if (buffer === undefined) {
      const start = index * CHUNK;
      buffer = Buffer.allocUnsafe(Math.min(CHUNK, size - start));
      const got = preadFully(fd, buffer, start, label);
      if (got !== buffer.length) throw new Error(`short read of the image memfd: ${got} of ${buffer.length} bytes at offset ${start}`);
      chunks.set(index, buffer);
    }
    return buffer;
  };
  return (offset, length) => {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
      throw new RangeError(`read of ${length} bytes at offset ${offset} is outside the ${size}-byte image`);
    }
    const first = Math.floor(offset / CHUNK);
    const last = Math.floor((offset + Math.max(length, 1) - 1) / CHUNK);
    if (first === last) {
      const base = first * CHUNK;
      return chunk(first).subarray(offset - base, offset - base + length);
    }
    const out = Buffer.allocUnsafe(length);
    let done = 0;
    for (let index = first; index <= last; index++) {
      const buffer = chunk(index);
      const from = Math.max(offset, index * CHUNK) - index * CHUNK;
      const n = Math.min(buffer.length - from, length - done);
      buffer.copy(out, done, from, from + n);
      done += n;
    }
    return out;
  };
}
