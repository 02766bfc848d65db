// The machine's memory figures, from the kernel's own files: /proc/meminfo (MemAvailable, the huge page pool),
// the memory cgroup limits of this process (cgroup v2: memory.max - memory.current, on every ancestor), and the
// default huge page pool's size (/proc/sys/vm/nr_hugepages; Documentation/admin-guide/mm/hugetlbpage.rst).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isDecimal } from '../text/chars.ts';

export interface MemInfo {
  memTotal: number;
  memAvailable: number;
  /** Bytes of one default huge page (0: no hugetlb support). */
  hugePageSize: number;
  hugePagesTotal: number;
  hugePagesFree: number;
  /** Free pages promised to mappings already (a free page counted here is not available). */
  hugePagesReserved: number;
}

/** Pure: the fields sealroot uses, in bytes (meminfo gives kB) or pages. */
export function parseMeminfo(text: string): MemInfo {
  const fields = new Map<string, number>();
  // "Name:   123 kB" or "Name:   123". String operations, not a regular expression: its compilation is most of
  // this parse's cost under emulation (~28 ms of a QEMU TCG boot's first call).
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const rest = line.slice(colon + 1).trim();
    const kB = rest.endsWith(' kB');
    const digits = kB ? rest.slice(0, -3) : rest;
    if (isDecimal(digits)) fields.set(line.slice(0, colon).trim(), Number(digits) * (kB ? 1024 : 1));
  }
  const need = (name: string): number => {
    const value = fields.get(name);
    if (value === undefined) throw new Error(`/proc/meminfo has no ${name}`);
    return value;
  };
  return {
    memTotal: need('MemTotal'),
    memAvailable: need('MemAvailable'),
    hugePageSize: fields.get('Hugepagesize') ?? 0,
    hugePagesTotal: fields.get('HugePages_Total') ?? 0,
    hugePagesFree: fields.get('HugePages_Free') ?? 0,
    hugePagesReserved: fields.get('HugePages_Rsvd') ?? 0,
  };
}

export function readMeminfo(file = '/proc/meminfo'): MemInfo {
  return parseMeminfo(fs.readFileSync(file, 'utf8'));
}

/** Pure: where this process's memory cgroup is, from /proc/self/cgroup: the v1 memory hierarchy if mounted, else v2. */
export function parseMemoryCgroup(text: string): { version: 1 | 2; path: string } | undefined {
  const lines = text.split('\n');
  // "hierarchy-ID:controller-list:path" (cgroups(7)); the path may hold ':' itself. String operations, not a regular
  // expression: see parseMeminfo.
  const v1 = lines.find((line) => {
    const first = line.indexOf(':');
    const second = first < 0 ? -1 : line.indexOf(':', first + 1);
    return second > first && isDecimal(line.slice(0, first)) && line.slice(first + 1, second).split(',').includes('memory');
  });
  if (v1 !== undefined) return { version: 1, path: v1.slice(v1.indexOf(':', v1.indexOf(':') + 1) + 1) };
  const v2 = lines.find((line) => line.startsWith('0::'));
  return v2 === undefined ? undefined : { version: 2, path: v2.slice(3) };
}

/**
 * The memory this process's cgroup (and each ancestor) lets it still charge: the smallest limit - usage on the
 * way up (v2 memory.max - memory.current; v1 memory.limit_in_bytes - memory.usage_in_bytes); undefined when no
 * limit applies. A shmem page is charged to the cgroup of the process that faults it in
 * (Documentation/admin-guide/cgroup-v2.rst, "Memory Ownership"): over the limit, the cgroup's OOM killer picks a
 * victim while MemAvailable still looks fine.
 */
export function cgroupHeadroom(cgroupRoot = '/sys/fs/cgroup', selfCgroup = '/proc/self/cgroup'): number | undefined {
  let where: { version: 1 | 2; path: string } | undefined;
  try {
    where = parseMemoryCgroup(fs.readFileSync(selfCgroup, 'utf8'));
  } catch {
    return undefined; // no /proc/self/cgroup: no cgroup limits apply to us
  }
  if (where === undefined) return undefined;
  const base = where.version === 1 ? path.join(cgroupRoot, 'memory') : cgroupRoot;
  const [limitFile, usageFile] = where.version === 1 ? ['memory.limit_in_bytes', 'memory.usage_in_bytes'] : ['memory.max', 'memory.current'];
  let headroom: number | undefined;
  for (let dir = where.path; ; dir = path.posix.dirname(dir)) {
    const read = (name: string): string | undefined => {
      const file = path.join(base, dir, name);
      // Asked first: a missing file's exception costs ms of a boot under QEMU TCG, and the root has none.
      if (!fs.existsSync(file)) return undefined;
      try {
        return fs.readFileSync(file, 'utf8').trim();
      } catch {
        return undefined; // the root cgroup has no memory.max; a controller not enabled has none either
      }
    };
    const limit = read(limitFile);
    // v1 writes "no limit" as a page-rounded LONG_MAX, v2 as "max". The usage is read only under a limit (each
    // read is ms of a boot under emulation, and most levels have none).
    const usage = limit !== undefined && limit !== 'max' && Number(limit) < 2 ** 62 ? read(usageFile) : undefined;
    if (usage !== undefined) {
      const left = Math.max(0, Number(limit) - Number(usage));
      headroom = headroom === undefined ? left : Math.min(headroom, left);
    }
    if (dir === '/' || dir === '.' || dir === '') break;
  }
  return headroom;
}

const NR_HUGEPAGES = '/proc/sys/vm/nr_hugepages';
const HUGEPAGES_DIR = '/sys/kernel/mm/hugepages';

/**
 * The smallest huge page size the kernel offers and its pool, from /sys/kernel/mm/hugepages/hugepages-<N>kB
 * (Documentation/admin-guide/mm/hugetlbpage.rst): the default size (/proc/meminfo) may be 1 GiB (default_hugepagesz=)
 * or 512 MiB (arm64 with 64 KiB pages), which an image would be rounded up to. Undefined without that directory.
 */
export function smallestHugePagePool(dir = HUGEPAGES_DIR): { size: number; total: number; free: number; reserved: number; nrFile: string } | undefined {
  let sizes: number[];
  try {
    sizes = fs.readdirSync(dir).map((name) => (name.startsWith('hugepages-') && name.endsWith('kB') ? name.slice('hugepages-'.length, -'kB'.length) : ''))
      .filter(isDecimal).map((kB) => Number(kB) * 1024);
  } catch {
    return undefined; // no hugetlb support in this kernel
  }
  if (sizes.length === 0) return undefined;
  const size = Math.min(...sizes);
  const pool = path.join(dir, `hugepages-${size / 1024}kB`);
  const read = (name: string): number => Number(fs.readFileSync(path.join(pool, name), 'utf8').trim());
  return { size, total: read('nr_hugepages'), free: read('free_hugepages'), reserved: read('resv_hugepages'), nrFile: path.join(pool, 'nr_hugepages') };
}

/**
 * MemAvailable and the rest from /proc/meminfo, the huge page figures those of the smallest huge page size (the
 * size sealroot's memfd asks for).
 */
export function readMemoryFigures(): MemInfo & { hugePoolFile: string } {
  const meminfo = readMeminfo();
  const pool = smallestHugePagePool();
  if (pool === undefined) return { ...meminfo, hugePoolFile: NR_HUGEPAGES };
  return { ...meminfo, hugePageSize: pool.size, hugePagesTotal: pool.total, hugePagesFree: pool.free, hugePagesReserved: pool.reserved, hugePoolFile: pool.nrFile };
}

/** A huge page pool's free pages and those of them promised to a mapping. */
export type PoolFigures = Pick<MemInfo, 'hugePagesFree' | 'hugePagesReserved'>;

/**
 * The free and reserved pages of the pool whose nr_hugepages is `poolFile`, for the read-back after a growth and
 * the release: the pool's own two files for a sysfs pool, /proc/meminfo for /proc/sys/vm/nr_hugepages (the
 * default size's pool); not the directory walk and the rest of readMemoryFigures.
 */
export function readPoolFigures(poolFile: string): PoolFigures {
  if (poolFile === NR_HUGEPAGES) return readMeminfo();
  const pool = path.dirname(poolFile);
  const read = (name: string): number => Number(fs.readFileSync(path.join(pool, name), 'utf8').trim());
  return { hugePagesFree: read('free_hugepages'), hugePagesReserved: read('resv_hugepages') };
}

/** Free huge pages not yet promised to a mapping. */
export function availableHugePages(info: PoolFigures): number {
  return Math.max(0, info.hugePagesFree - info.hugePagesReserved);
}

/**
 * Grows the default huge page pool until `pages` are available (the kernel allocates what it can: on fragmented
 * memory, fewer). Returns how many pages it added to the pool, for releaseHugePages(); `available` is what the
 * pool then holds free and unreserved. `before`: the figures the caller has just read, not read again.
 */
export function growHugePagePool(
  pages: number, procFile = readMemoryFigures().hugePoolFile, figures: () => PoolFigures = readMemoryFigures, before: PoolFigures = figures(),
): { added: number; available: number } {
  let added = 0;
  let available = availableHugePages(before);
  // A few rounds: another process may take or shrink the pool between the write and the read-back.
  for (let round = 0; round < 3 && available < pages; round++) {
    const total = Number(fs.readFileSync(procFile, 'utf8').trim());
    fs.writeFileSync(procFile, `${total + pages - available}\n`);
    const after = Number(fs.readFileSync(procFile, 'utf8').trim());
    added += Math.max(0, after - total);
    available = availableHugePages(figures());
    if (after <= total) break; // the kernel could not allocate any more
  }
  return { added, available };
}

/** Shrinks the pool by `pages` added earlier: the kernel frees only pages no file holds (surplus stays in use). */
export function releaseHugePages(pages: number, procFile = readMemoryFigures().hugePoolFile): void {
  if (pages <= 0) return;
  const total = Number(fs.readFileSync(procFile, 'utf8').trim());
  fs.writeFileSync(procFile, `${Math.max(0, total - pages)}\n`);
}
