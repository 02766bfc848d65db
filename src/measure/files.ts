// Reading the inputs of a prediction on the running system: the event log (securityfs reports size 0, so it is
// read to EOF, bounded) and the digests of a file that will boot, in every bank at once.
import { createHash, type Hash } from 'node:crypto';
import * as fs from 'node:fs';
import { BANKS, type BankName } from '../tpm2/constants.ts';
import { MAX_EVENT_LOG_BYTES } from './event-log.ts';
import { MeasureError } from './replay.ts';

export const DEFAULT_EVENT_LOG = '/sys/kernel/security/tpm0/binary_bios_measurements';

const CHUNK = 1 << 20;

function readChunks(file: string, each: (chunk: Buffer) => void, limit = Number.MAX_SAFE_INTEGER): number {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused on the fd below.
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  try {
    if (!fs.fstatSync(fd).isFile()) throw new MeasureError(`${file}: not a regular file`);
    const buffer = Buffer.alloc(CHUNK);
    let total = 0;
    for (;;) {
      const count = fs.readSync(fd, buffer, 0, CHUNK, null);
      if (count === 0) return total;
      total += count;
      if (total > limit) throw new MeasureError(`${file}: more than ${limit} bytes`);
      each(buffer.subarray(0, count));
    }
  } finally {
    fs.closeSync(fd);
  }
}

export function readEventLogFile(file: string): Buffer {
  const chunks: Buffer[] = [];
  readChunks(file, (chunk) => chunks.push(Buffer.from(chunk)), MAX_EVENT_LOG_BYTES);
  return Buffer.concat(chunks);
}

/** Far above any kernel image (the 6.12 cloud kernel: 11 MiB); it is read whole for its Authenticode hash. */
export const MAX_KERNEL_BYTES = 256 << 20;

export function readKernel(file: string): Buffer {
  const chunks: Buffer[] = [];
  readChunks(file, (chunk) => chunks.push(Buffer.from(chunk)), MAX_KERNEL_BYTES);
  return Buffer.concat(chunks);
}

/** The file's digest in each bank, as HashLogExtendEvent computes it over the loaded bytes. */
export function fileDigests(file: string, banks: readonly BankName[]): Map<BankName, Buffer> {
  const hashes = new Map<BankName, Hash>(banks.map((bank) => [bank, createHash(BANKS[bank].node)]));
  readChunks(file, (chunk) => { for (const hash of hashes.values()) hash.update(chunk); });
  return new Map([...hashes].map(([bank, hash]) => [bank, hash.digest()]));
}
