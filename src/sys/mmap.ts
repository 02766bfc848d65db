// mmap(2), read-only: the view's pages are the file's own (for a memfd, its shmem pages), not a copy. The mapping
// is private: a shared one of a writable fd counts as writable (VM_MAYWRITE) and F_SEAL_WRITE would then fail
// with EBUSY (memfd_create(2)); a private one that is never written shows the file's pages, later writes included.
// Only for files that cannot shrink while mapped (a memfd sealed with F_SEAL_SHRINK): a page beyond the end of
// the file raises SIGBUS, which would kill the agent instead of failing the step.
//
// MAP_NORESERVE: on hugetlbfs a private mapping reserves one huge page per page mapped for copy-on-write
// (mm/hugetlb.c hugetlb_reserve_pages), which would need the pool twice over; a mapping never written needs none.
// Without the reservation, a private hugetlb fault on a page not yet in the file's page cache would allocate an
// anonymous page instead (hugetlb_no_page): such a mapping is read only where the file's pages already exist.
import { mappingBuffer, syscall, syscallRetrying } from './native.ts';

const PROT_READ = 0x1;
const PROT_WRITE = 0x2;
const MAP_SHARED = 0x01;
const MAP_PRIVATE = 0x02;
export const MAP_NORESERVE = 0x4000;

/** Maps `length` bytes of `fd` from offset 0; the mapping lives as long as the returned array (or a view of it). */
export function mapReadOnly(fd: number, length: number, path?: string): Uint8Array {
  if (length === 0) return new Uint8Array(0);
  const address = syscall('mmap', [0, length, PROT_READ, MAP_PRIVATE | MAP_NORESERVE, fd, 0], path);
  return new Uint8Array(mappingBuffer(address, length));
}

/**
 * A shared, writable mapping of `length` bytes of `fd`, as a bare address: no JavaScript view owns it, so it is
 * gone exactly when unmap() is called (F_SEAL_WRITE fails with EBUSY while any shared writable mapping exists).
 * For files without write(2) (hugetlbfs): the kernel copies into it with preadToAddress().
 */
export function mapSharedWritable(fd: number, length: number, path?: string): number {
  return syscall('mmap', [0, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0], path);
}

export function unmap(address: number, length: number, path?: string): void {
  syscall('munmap', [address, length], path);
}

/**
 * pread(2) of `source` at `offset` straight into mapped memory at `address`, until `length` bytes or end of file;
 * returns the bytes read. One copy, from the source's page cache into the mapping's pages, as sendfile makes.
 */
export function preadToAddress(source: number, address: number, length: number, offset: number, path?: string): number {
  let done = 0;
  while (done < length) {
    const n = syscallRetrying('pread64', [source, address + done, length - done, offset + done], path);
    if (n === 0) break;
    done += n;
  }
  return done;
}
