// `sealroot load`: runs the image loader on its own (copy into a memfd, fs-verity digest, seal, compare) and reports.
import { loadImage } from '../image/load.ts';
import { closeFd } from '../sys/io.ts';
import { describeSeals } from '../sys/memfd.ts';
import { DigestSyntaxError, formatDigest, parseDigest, type Digest } from '../verity/digest.ts';
import type { Command } from './command.ts';
import { parseCommandArgs, UsageError } from './command.ts';

const UNITS: Readonly<Record<string, number>> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30 };

/** Bytes, with an optional binary suffix: 512, 64K, 256M, 2G. */
export function parseSize(text: string): number {
  const match = /^([0-9]+)([KMG]?)(?:i?B)?$/i.exec(text);
  const value = match === null ? NaN : Number(match[1]) * UNITS[match[2]!.toUpperCase()]!;
  if (!Number.isSafeInteger(value)) throw new UsageError(`not a size: '${text}' (bytes, or a number with K, M or G)`);
  return value;
}

export const loadCommand: Command = {
  name: 'load',
  summary: 'copy an image into a sealed memfd, checking its fs-verity digest',
  usage: `Usage: sealroot load --expect=sha256:HEX [--max-size=SIZE] [--unswappable=require|prefer|off] IMAGE

Copies IMAGE (an EROFS/composefs image, or a zstd-compressed one: name ending in .zst or zstd magic) into a memfd
while computing its fs-verity digest (SHA-256 or SHA-512 as --expect says, block size 4096, no salt; for zstd,
the digest of the decompressed bytes), seals the memfd (F_SEAL_SHRINK|GROW|WRITE|SEAL), reads the seals back and
compares the digest in constant time. If IMAGE already has kernel fs-verity with that very digest, the copy skips
userspace hashing (the kernel verifies each block read); the log says which path ran.
The memfd is a hugetlb one (never swapped; the huge page pool is grown as needed, which takes root) as in the boot
with [memory] unswappable = "require" (the default); "prefer" falls back to a plain memfd with a warning, "off"
takes a plain memfd.
Refuses: a digest mismatch, a file that is not regular, larger than SIZE (default 2G; K, M, G suffixes), or that
changes size during the copy, a corrupt zstd stream, an image (or decompressed stream) larger than the memory left
(MemAvailable and the memory cgroup's headroom, minus a margin), no huge pages with "require".
Prints the digest, the seals, the method, the memory and the time taken.
Exit status: 0 when the digest matches; 1 otherwise (one line on stderr); 2 on a usage error.`,
  async run(argv, { stdout, log }) {
    const { values, positionals } = parseCommandArgs(argv, {
      expect: { type: 'string' },
      'max-size': { type: 'string' },
      unswappable: { type: 'string' },
    });
    const unswappable = values.unswappable ?? 'require';
    if (unswappable !== 'require' && unswappable !== 'prefer' && unswappable !== 'off') {
      throw new UsageError(`--unswappable must be require, prefer or off, not '${unswappable}'`);
    }
    if (values.expect === undefined) throw new UsageError('--expect is required');
    if (positionals.length !== 1) throw new UsageError('exactly one IMAGE is required');
    let expected: Digest;
    try {
      expected = parseDigest(values.expect);
    } catch (error) {
      if (error instanceof DigestSyntaxError) throw new UsageError(error.message);
      throw error;
    }
    const maxSize = values['max-size'] === undefined ? undefined : parseSize(values['max-size']);
    const image = await loadImage({ path: positionals[0]!, expected, maxSize, log, memory: { unswappable } });
    closeFd(image.fd);
    stdout(`${formatDigest(image.digest)} ${positionals[0]}
size: ${image.size} bytes${image.compressed ? ' (decompressed)' : ''}
method: ${image.method}
seals: ${describeSeals(image.seals)}
memory: ${image.backing === 'hugetlb' ? 'hugetlb (never swapped)' : 'shmem (swappable)'}
time: ${image.millis.toFixed(1)} ms
`);
    return 0;
  },
};
