// Loop devices: /dev/loop-control LOOP_CTL_GET_FREE and LOOP_CONFIGURE (include/uapi/linux/loop.h, Linux >= 5.8).
import { AT_FDCWD, O_RDWR, openAt } from './files.ts';
import { closeFd } from './io.ts';
import { syscall } from './native.ts';

const LOOP_CLR_FD = 0x4c01;
const LOOP_GET_STATUS64 = 0x4c05;
const LOOP_CONFIGURE = 0x4c0a;
const LOOP_CTL_GET_FREE = 0x4c82;

export const LO_FLAGS_READ_ONLY = 1;
export const LO_FLAGS_AUTOCLEAR = 4;
export const LO_FLAGS_DIRECT_IO = 16;

// struct loop_info64: 5 x u64, 4 x u32, lo_file_name[64], lo_crypt_name[64], lo_encrypt_key[32], lo_init[2] u64.
const LOOP_INFO64_SIZE = 232;
const INFO_OFFSET_FLAGS = 52;
const INFO_OFFSET_FILE_NAME = 56;
const LO_NAME_SIZE = 64;
// struct loop_config: u32 fd, u32 block_size, struct loop_info64 info, u64 __reserved[8].
const LOOP_CONFIG_SIZE = 8 + LOOP_INFO64_SIZE + 64;
const CONFIG_OFFSET_INFO = 8;

export interface LoopConfig {
  backingFd: number;
  blockSize: number;
  flags: number;
  /** Shown in /sys/block/loopN/loop/backing_file; truncated to 63 bytes. */
  fileName: string;
}

/** Pure: the struct loop_config bytes LOOP_CONFIGURE takes. */
export function encodeLoopConfig(config: LoopConfig): Buffer {
  const buf = Buffer.alloc(LOOP_CONFIG_SIZE);
  buf.writeUInt32LE(config.backingFd, 0);
  buf.writeUInt32LE(config.blockSize, 4);
  buf.writeUInt32LE(config.flags, CONFIG_OFFSET_INFO + INFO_OFFSET_FLAGS);
  const name = Buffer.from(config.fileName, 'utf8').subarray(0, LO_NAME_SIZE - 1);
  name.copy(buf, CONFIG_OFFSET_INFO + INFO_OFFSET_FILE_NAME);
  return buf;
}

export interface LoopStatus {
  flags: number;
  fileName: string;
}

export function decodeLoopInfo64(buf: Uint8Array): LoopStatus {
  const view = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const nameBytes = view.subarray(INFO_OFFSET_FILE_NAME, INFO_OFFSET_FILE_NAME + LO_NAME_SIZE);
  const end = nameBytes.indexOf(0);
  return {
    flags: view.readUInt32LE(INFO_OFFSET_FLAGS),
    fileName: nameBytes.subarray(0, end < 0 ? LO_NAME_SIZE : end).toString('utf8'),
  };
}

/** Asks /dev/loop-control for the number of a free loop device (creating one if needed). */
export function loopGetFree(controlPath = '/dev/loop-control'): number {
  const fd = openAt(AT_FDCWD, controlPath, O_RDWR);
  try {
    return syscall('ioctl', [fd, LOOP_CTL_GET_FREE], controlPath);
  } finally {
    closeFd(fd);
  }
}

/** LOOP_CONFIGURE on an open loop device fd. EBUSY means another process took the device first. */
export function loopConfigure(loopFd: number, config: LoopConfig, devicePath?: string): void {
  syscall('ioctl', [loopFd, LOOP_CONFIGURE, encodeLoopConfig(config)], devicePath);
}

export function loopGetStatus(loopFd: number, devicePath?: string): LoopStatus {
  const info = Buffer.alloc(LOOP_INFO64_SIZE);
  syscall('ioctl', [loopFd, LOOP_GET_STATUS64, info], devicePath);
  return decodeLoopInfo64(info);
}

export function loopClear(loopFd: number, devicePath?: string): void {
  syscall('ioctl', [loopFd, LOOP_CLR_FD], devicePath);
}
