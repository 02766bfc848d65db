// Whole-buffer reads and writes on raw file descriptors: short transfers are continued and EINTR retried.
import { SysError } from '../errors.ts';
import { syscallRetrying } from './native.ts';

/** Reads until `buffer` is full or end of file; returns the bytes read. */
export function readFully(fd: number, buffer: Uint8Array, path?: string): number {
  let done = 0;
  while (done < buffer.length) {
    const n = syscallRetrying('read', [fd, buffer.subarray(done), buffer.length - done], path);
    if (n === 0) break;
    done += n;
  }
  return done;
}

/** Reads at `offset` until `buffer` is full or end of file; returns the bytes read. */
export function preadFully(fd: number, buffer: Uint8Array, offset: number, path?: string): number {
  let done = 0;
  while (done < buffer.length) {
    const n = syscallRetrying('pread64', [fd, buffer.subarray(done), buffer.length - done, offset + done], path);
    if (n === 0) break;
    done += n;
  }
  return done;
}

/** Writes all of `data`; a write that makes no progress is an error (ENOSPC-like), never a silent loop. */
export function writeFully(fd: number, data: Uint8Array, path?: string): void {
  let done = 0;
  while (done < data.length) {
    const n = syscallRetrying('write', [fd, data.subarray(done), data.length - done], path);
    if (n === 0) throw new SysError('write', 28 /* ENOSPC */, path);
    done += n;
  }
}

export function closeFd(fd: number): void {
  // close(2) must not be retried on EINTR (the fd is released either way; see close(2) NOTES).
  try {
    syscallRetrying('close', [fd]);
  } catch (error) {
    if (!(error instanceof SysError && error.code === 'EINTR')) throw error;
  }
}

/**
 * Copies up to `length` bytes of `source` from `offset` to `destination` at its file position, in the kernel
 * (sendfile(2): no userspace buffer). Stops early at the end of the source; returns the bytes copied.
 */
export function sendfileFully(destination: number, source: number, offset: number, length: number, path?: string): number {
  // sendfile reads from *offset and advances it; the source's own file position is left alone.
  const position = new BigInt64Array([BigInt(offset)]);
  let done = 0;
  while (done < length) {
    const n = syscallRetrying('sendfile', [destination, source, position, length - done], path);
    if (n === 0) break;
    done += n;
  }
  return done;
}

export function ftruncate(fd: number, length: number, path?: string): void {
  syscallRetrying('ftruncate', [fd, length], path);
}
