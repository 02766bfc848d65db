// memfd_create(2) and file sealing (fcntl F_ADD_SEALS / F_GET_SEALS; see memfd_create(2), fcntl(2)).
import { syscall } from './native.ts';

export const MFD_CLOEXEC = 0x1;
export const MFD_ALLOW_SEALING = 0x2;
/** Backed by hugetlbfs pages of the default huge page size: never swapped; sealing works since Linux 4.16. */
export const MFD_HUGETLB = 0x4;

const F_ADD_SEALS = 1033;
const F_GET_SEALS = 1034;

export const F_SEAL_SEAL = 0x1;
export const F_SEAL_SHRINK = 0x2;
export const F_SEAL_GROW = 0x4;
export const F_SEAL_WRITE = 0x8;
/** The seals sealroot requires before it trusts an image's bytes: nothing can change them afterwards. */
export const IMAGE_SEALS = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL;

export function memfdCreate(name: string, flags = MFD_CLOEXEC | MFD_ALLOW_SEALING): number {
  return syscall('memfd_create', [name, flags], `memfd:${name}`);
}

export function addSeals(fd: number, seals: number): void {
  syscall('fcntl', [fd, F_ADD_SEALS, seals]);
}

export function getSeals(fd: number): number {
  return syscall('fcntl', [fd, F_GET_SEALS]);
}

export function describeSeals(seals: number): string {
  const names: [number, string][] = [
    [F_SEAL_SEAL, 'SEAL'], [F_SEAL_SHRINK, 'SHRINK'], [F_SEAL_GROW, 'GROW'], [F_SEAL_WRITE, 'WRITE'],
  ];
  const set = names.filter(([bit]) => (seals & bit) !== 0).map(([, name]) => name);
  return set.length === 0 ? 'none' : set.join('|');
}
