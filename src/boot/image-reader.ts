// The validator's view of the sealed image memfd: reads served as zero-copy views of 4 MiB chunks, each read
// from the memfd at most once, with one pread. A composefs image is nearly all metadata, and the validator
// touches every 4 KiB block of it (measured: all of them in a 64 MiB image), so what matters is few syscalls,
// no per-read copy and no per-read allocation beyond the view; chunks the walk never reaches are never read.
// Only a read that straddles two chunks (an inode across a 4 MiB boundary) is copied.
// The memfd is sealed, so a cached chunk is the byte-for-byte content the kernel will mount.
import { preadFully } from '../sys/io.ts';

const CHUNK_BITS = 22;
const CHUNK = 2 ** CHUNK_BITS;

export function chunkedReader(fd: number, size: number, label?: string): (offset: number, length: number) => Buffer {
  const chunks: (Buffer | undefined)[] = new Array(Math.ceil(size / CHUNK)).fill(undefined);
  const chunk = (index: number): Buffer => {
    let buffer = chunks[index];
    if (buffer === undefined) {
      const start = index * CHUNK;
      buffer = Buffer.allocUnsafeSlow(Math.min(CHUNK, size - start));
      const got = preadFully(fd, buffer, start, label);
      if (got !== buffer.length) throw new Error(`short read of the image memfd: ${got} of ${buffer.length} bytes at offset ${start}`);
      chunks[index] = buffer;
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
      const from = offset - first * CHUNK;
      return chunk(first).subarray(from, from + length);
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
