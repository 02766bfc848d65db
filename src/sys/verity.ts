// fs-verity ioctls (include/uapi/linux/fsverity.h; Documentation/filesystems/fsverity.rst).
import { SysError } from '../errors.ts';
import { errnoName } from './errno.ts';
import { syscall, syscallOrErrno } from './native.ts';

// _IOW('f', 133, struct fsverity_enable_arg /* 128 bytes */) and _IOWR('f', 134, struct fsverity_digest /* 4 */).
const FS_IOC_ENABLE_VERITY = 0x40806685;
const FS_IOC_MEASURE_VERITY = 0xc0046686;

export const FS_VERITY_HASH_ALG_SHA256 = 1;
export const FS_VERITY_HASH_ALG_SHA512 = 2;

const MAX_DIGEST_SIZE = 64;

export interface MeasuredVerity {
  algorithm: number;
  digest: Buffer;
}

/** The kernel's fs-verity digest of an open file, or undefined when the file has no fs-verity (ENODATA/ENOTTY/EOPNOTSUPP). */
export function measureVerity(fd: number, path?: string): MeasuredVerity | undefined {
  const arg = Buffer.alloc(4 + MAX_DIGEST_SIZE);
  arg.writeUInt16LE(MAX_DIGEST_SIZE, 2);
  // Without an exception for the usual answer, no fs-verity (each costs ms of a boot under QEMU TCG).
  const result = syscallOrErrno('ioctl', [fd, FS_IOC_MEASURE_VERITY, arg]);
  if (result < 0) {
    if (['ENODATA', 'ENOTTY', 'EOPNOTSUPP', 'EINVAL'].includes(errnoName(-result))) return undefined;
    throw new SysError('ioctl', -result, path);
  }
  const size = arg.readUInt16LE(2);
  return { algorithm: arg.readUInt16LE(0), digest: Buffer.from(arg.subarray(4, 4 + size)) };
}

/** Enables fs-verity on a file opened read-only (struct fsverity_enable_arg, version 1, no salt, no signature). */
export function enableVerity(fd: number, algorithm: number, blockSize: number, path?: string): void {
  const arg = Buffer.alloc(128);
  arg.writeUInt32LE(1, 0);
  arg.writeUInt32LE(algorithm, 4);
  arg.writeUInt32LE(blockSize, 8);
  syscall('ioctl', [fd, FS_IOC_ENABLE_VERITY, arg], path);
}
