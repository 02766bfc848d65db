// Where the verified image lives in memory, and whether the machine can hold it, decided before anything is copied.
//
// A plain memfd is shmem: once the running system enables swap, its pages can be written to the swap device and
// read back later (mm/shmem.c shmem_writepage), and the loop device keeps the memfd for the whole uptime. The seals
// stop writes through the file, not through swap: whoever writes the swap device could change the EROFS metadata,
// including the per-file fs-verity digests overlayfs checks against. A hugetlb memfd (MFD_HUGETLB) is never
// swapped: hugetlbfs pages are not on the LRU lists reclaim walks (mm/hugetlb.c), and they stay with the file,
// not with a process, so they hold after sealroot exits (mlock(2) would not: it ends with the process).
//
// hugetlbfs has no write(2) or splice (EINVAL, measured on 6.18) and its size must be a multiple of the huge page
// size (hugetlbfs_setattr): the image is copied through a shared mapping (pread into it) and the memfd is rounded
// up to whole huge pages; the bytes past the image are zeros, sealed with the rest.
//
// Memory bound (issue 12): the copy needs its bytes in RAM. Refused before copying when the image would not fit
// in what the kernel reports available (MemAvailable, and the memory cgroup's limit, which is what kills first),
// minus a margin for the rest of the boot; for hugetlb, when the pool cannot be grown to hold it.
import { DEFAULT_UNSWAPPABLE, type Unswappable } from '../config/boot-config.ts';
import type { Logger } from '../log.ts';
import { StepError } from '../errors.ts';
import { closeFd } from '../sys/io.ts';
import { MFD_ALLOW_SEALING, MFD_CLOEXEC, MFD_HUGETLB, memfdCreate } from '../sys/memfd.ts';
import {
  availableHugePages, cgroupHeadroom, growHugePagePool, readMemoryFigures, readPoolFigures, releaseHugePages, type MemInfo,
} from '../sys/memory.ts';

export const STEP = 'copy-image';

export interface MemoryFigures {
  /** With the pool's file when read from the kernel (readMemoryFigures). */
  meminfo: MemInfo & { hugePoolFile?: string };
  /** The memory cgroup's headroom, undefined when unlimited. */
  cgroup: number | undefined;
}

export interface ImageMemoryOptions {
  unswappable?: Unswappable;
  /** Bytes left free beyond the image (default: 64 MiB + 1/32 of the memory the image may use at most). */
  margin?: number;
  log?: Logger;
  /** For tests: the figures as the kernel would report them, and the pool growth. */
  figures?: () => MemoryFigures;
  growPool?: (pages: number) => { added: number; available: number };
  releasePool?: (pages: number) => void;
}

export interface ImageMemfd {
  fd: number;
  backing: 'hugetlb' | 'shmem';
  /** Bytes the memfd is sized to: the image rounded up to whole pages of the backing. */
  capacity(size: number): number;
  /**
   * Huge pages this loader added to the pool: give back those still free (after a refusal, or any unused).
   * `heldBytes`: the size of the memfd while it is open (its pages are not free), 0 once it is closed.
   */
  releaseUnused(heldBytes: number): void;
}

/** For the rest of the boot (Node, the hash workers, the mounts): 64 MiB and 1/32 of what could be used. */
/** MFD_HUGE_<size>: log2 of the page size in bits 26..31 (include/uapi/linux/memfd.h, MFD_HUGE_SHIFT 26). */
export function hugePageFlag(size: number): number {
  return Math.log2(size) * 2 ** 26;
}

export function defaultMargin(meminfo: MemInfo, ceiling: number): number {
  return 64 * 2 ** 20 + Math.floor(Math.min(meminfo.memTotal, ceiling) / 32);
}

function readFigures(): MemoryFigures {
  return { meminfo: readMemoryFigures(), cgroup: cgroupHeadroom() };
}

const MiB = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

export interface MemoryLeft {
  /** Bytes the image may take: the smaller of MemAvailable and the cgroup's headroom, minus the margin. */
  bytes: number;
  /** The figures, for a refusal's line. */
  where: string;
  meminfo: MemoryFigures['meminfo'];
}

export function memoryLeft(options: ImageMemoryOptions = {}): MemoryLeft {
  const { meminfo, cgroup } = (options.figures ?? readFigures)();
  const ceiling = Math.min(meminfo.memAvailable, cgroup ?? Infinity);
  const margin = options.margin ?? defaultMargin(meminfo, ceiling);
  return {
    bytes: Math.max(0, ceiling - margin),
    where: `MemAvailable ${MiB(meminfo.memAvailable)}${cgroup === undefined ? '' : `, cgroup headroom ${MiB(cgroup)}`}, margin ${MiB(margin)}`,
    meminfo,
  };
}

/**
 * Creates the image's memfd for an image of `size` bytes; `staged`: a plain memfd that holds the bytes already (a
 * decompressed stream), returned as is when the image may or must stay in swappable memory. Throws StepError('copy-image') when the machine cannot
 * hold it, or when unswappable memory is required and cannot be had.
 */
export function createImageMemfd(size: number, path: string, options: ImageMemoryOptions = {}, staged?: number): ImageMemfd {
  const mode = options.unswappable ?? DEFAULT_UNSWAPPABLE;
  const shmem = (fd: number): ImageMemfd => ({ fd, backing: 'shmem', capacity: (bytes) => bytes, releaseUnused: () => undefined });
  // A zstd stream decompressed into a plain memfd already: swappable memory needs no second copy.
  if (mode === 'off' && staged !== undefined) return shmem(staged);
  const left = memoryLeft(options);
  const { meminfo, where } = left;
  const ramLeft = left.bytes;
  const refuse = (reason: string) => new StepError(STEP, reason, { path });

  let hugetlbFailure: string | undefined;
  if (mode !== 'off') {
    const page = meminfo.hugePageSize;
    // The pool's nr_hugepages (undefined: figures given by a test); its two other files are what is read back.
    const poolFile = meminfo.hugePoolFile;
    if (page === 0) {
      hugetlbFailure = 'the kernel has no huge pages (no Hugepagesize in /proc/meminfo)';
    } else {
      const pages = Math.max(1, Math.ceil(size / page));
      // The pool grows out of ordinary memory: the same bound applies to the pages it would add.
      const missing = Math.max(0, pages - availableHugePages(meminfo));
      if (missing * page > ramLeft) {
        hugetlbFailure = `${pages} huge pages (${MiB(pages * page)}) for the image, `
          + `${availableHugePages(meminfo)} free in the pool, and ${MiB(missing * page)} more do not fit (${where})`;
      } else {
        let added = 0;
        try {
          // The figures just read are the pool's state before it grows: its file and free pages are not read again
          // (each read of the pool's and the kernel's figures is several ms of a boot under emulation).
          const grow = options.growPool ?? ((count: number) => (poolFile === undefined ? growHugePagePool(count)
            : growHugePagePool(count, poolFile, () => readPoolFigures(poolFile), meminfo)));
          const grown = grow(pages);
          added = grown.added;
          if (grown.available < pages) {
            hugetlbFailure = `the huge page pool holds ${grown.available} free pages of the ${pages} needed (${MiB(pages * page)}): `
              + 'the kernel could not allocate more (fragmented memory?); reserve them earlier, e.g. hugepages= on the kernel command line';
          }
        } catch (error) {
          hugetlbFailure = `cannot grow the huge page pool: ${error instanceof Error ? error.message : String(error)}`;
        }
        const release = options.releasePool ?? ((count: number) => releaseHugePages(count, poolFile));
        if (hugetlbFailure !== undefined) {
          release(added);
        } else {
          let fd: number;
          try {
            // The size asked for explicitly (log2 of it << MFD_HUGE_SHIFT, memfd_create(2)): the smallest the kernel
            // offers, whatever the default is.
            fd = memfdCreate('sealroot-image', MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | hugePageFlag(page));
          } catch (error) {
            release(added);
            fd = -1;
            hugetlbFailure = `memfd_create(MFD_HUGETLB): ${error instanceof Error ? error.message : String(error)}`;
          }
          if (fd >= 0) {
            let released = 0;
            return {
              fd,
              backing: 'hugetlb',
              capacity: (bytes) => Math.max(1, Math.ceil(bytes / page)) * page,
              releaseUnused: (heldBytes) => {
                // Only pages this load added and nobody holds (a file's pages are not freed by the kernel): none
                // while the memfd holds as many as were added (then nothing is read), the rest once it is closed
                // after a refusal.
                const excess = added - released - Math.ceil(heldBytes / page);
                if (excess <= 0) return;
                // The pool's figures only: not the memory cgroup's, which readFigures() walks too (ms under emulation).
                const figures = options.figures !== undefined ? options.figures().meminfo : poolFile === undefined ? readMemoryFigures() : readPoolFigures(poolFile);
                const pages = Math.min(excess, availableHugePages(figures));
                if (pages <= 0) return;
                release(pages);
                released += pages;
              },
            };
          }
        }
      }
    }
    if (mode === 'require') {
      throw refuse(`memory.unswappable = "require": no unswappable memory for the image: ${hugetlbFailure}`);
    }
    options.log?.warn(`${STEP}: ${path}: WARNING: the image goes into swappable memory (memory.unswappable = "prefer"): `
      + `${hugetlbFailure}; a writer of the swap device could change the mounted image`);
  }
  if (staged !== undefined) return shmem(staged);
  if (size > ramLeft) {
    throw refuse(`the image is ${size} bytes, more than the memory left for it: ${MiB(ramLeft)} (${where})`);
  }
  return shmem(memfdCreate('sealroot-image'));
}

/** Closes the memfd and gives back the huge pages it no longer holds. */
export function closeImageMemfd(memfd: ImageMemfd): void {
  closeFd(memfd.fd);
  memfd.releaseUnused(0);
}
