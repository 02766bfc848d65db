// A read-only, autoclear loop device over an open file (the sealed image memfd): LOOP_CTL_GET_FREE, then
// LOOP_CONFIGURE on the device it names. Another process may take that device between the two calls; the
// configure then fails with EBUSY and we ask for a free device again (util-linux losetup does the same).
import { SysError } from '../errors.ts';
import { AT_FDCWD, O_CLOEXEC, O_RDONLY, openAt } from '../sys/files.ts';
import { closeFd } from '../sys/io.ts';
import { LO_FLAGS_AUTOCLEAR, LO_FLAGS_READ_ONLY, loopConfigure, loopGetFree } from '../sys/loop.ts';

export interface LoopDevice {
  number: number;
  path: string;
  /** Open fd of the device; closing the last opener of an autoclear device (and unmounting) detaches it. */
  fd: number;
}

const ATTEMPTS = 16;
/** Errors that mean "the device went to someone else or away": ask for another one. */
const RACE_CODES = new Set(['EBUSY', 'ENXIO', 'ENOENT', 'ENODEV']);

/**
 * The loop device gets a read-only file of its own: LOOP_CONFIGURE refuses a file opened for writing whose
 * filesystem has no write_iter (drivers/block/loop.c loop_check_backing_file: EINVAL on a hugetlb memfd, measured
 * on 6.18), and a read-only device needs no write access anyway. Reopened through /proc/self/fd (same inode,
 * same seals); without /proc, the fd itself.
 */
function readOnlyBacking(backingFd: number): { fd: number; owned: boolean } {
  try {
    return { fd: openAt(AT_FDCWD, `/proc/self/fd/${backingFd}`, O_RDONLY | O_CLOEXEC), owned: true };
  } catch (error) {
    if (error instanceof SysError && error.code === 'ENOENT') return { fd: backingFd, owned: false };
    throw error;
  }
}

export function attachReadOnlyLoop(backingFd: number, fileName: string, blockSize = 4096, devDir = '/dev'): LoopDevice {
  const backing = readOnlyBacking(backingFd);
  try {
    return attach(backing.fd, fileName, blockSize, devDir);
  } finally {
    if (backing.owned) closeFd(backing.fd); // the loop device holds its own reference
  }
}

function attach(backingFd: number, fileName: string, blockSize: number, devDir: string): LoopDevice {
  let lastRace: SysError | undefined;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const number = loopGetFree(`${devDir}/loop-control`);
    const path = `${devDir}/loop${number}`;
    let fd: number;
    try {
      fd = openAt(AT_FDCWD, path, O_RDONLY);
    } catch (error) {
      if (error instanceof SysError && RACE_CODES.has(error.code)) {
        lastRace = error;
        continue;
      }
      throw error;
    }
    try {
      loopConfigure(fd, { backingFd, blockSize, flags: LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR, fileName }, path);
      return { number, path, fd };
    } catch (error) {
      closeFd(fd);
      if (error instanceof SysError && RACE_CODES.has(error.code)) {
        lastRace = error;
        continue;
      }
      throw error;
    }
  }
  throw lastRace ?? new Error('no free loop device');
}
