// mmap(2), read-only: the view's pages are the file's own (for a memfd, its shmem pages), not a copy. The mapping
// is private: a shared one of a writable fd counts as writable (VM_MAYWRITE) and F_SEAL_WRITE would then fail
// with EBUSY (memfd_create(2)); a private one that is never written shows the file's pages, later writes included.
// Only for files that cannot shrink while mapped (a memfd sealed with F_SEAL_SHRINK): a page beyond the end of
// the file raises SIGBUS, which would kill the agent instead of failing the step.
import { mappingBuffer, syscall } from './native.ts';

const PROT_READ = 0x1;
const MAP_PRIVATE = 0x02;

/** Maps `length` bytes of `fd` from offset 0; the mapping lives as long as the returned array (or a view of it). */
export function mapReadOnly(fd: number, length: number, path?: string): Uint8Array {
  if (length === 0) return new Uint8Array(0);
  const address = syscall('mmap', [0, length, PROT_READ, MAP_PRIVATE, fd, 0], path);
  return new Uint8Array(mappingBuffer(address, length));
}
