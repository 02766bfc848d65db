// Which verification path the loader takes (pure). The kernel path needs fs-verity already enabled on the source
// with the very digest we trust: the digest covers the fsverity_descriptor (algorithm, block size, salt, size, root
// hash), so equal digests mean equal parameters and equal contents, and the kernel then checks every block read
// against the Merkle tree (EIO on mismatch). Anything else is verified in userspace, which decides alone.
import type { MeasuredVerity } from '../sys/verity.ts';
import { digestsEqual, formatDigest, type Digest, type HashAlgorithm } from '../verity/digest.ts';
import { FS_VERITY_ALGORITHM_IDS } from '../verity/merkle.ts';

export type VerifyMethod = 'userspace' | 'kernel-fsverity';

export interface MethodChoice {
  method: VerifyMethod;
  /** Why, for the log. */
  reason: string;
}

function algorithmName(id: number): string {
  const entry = Object.entries(FS_VERITY_ALGORITHM_IDS).find(([, value]) => value === id);
  return entry === undefined ? `algorithm ${id}` : entry[0];
}

/** `trusted`: the digests the image may have (one algorithm); the kernel path when the source's digest is one of them. */
export function chooseMethod(measured: MeasuredVerity | undefined, trusted: readonly Digest[], compressed: boolean): MethodChoice {
  const algorithm = trusted[0]!.algorithm;
  if (compressed) return { method: 'userspace', reason: 'the image is compressed: its digest is that of the decompressed bytes' };
  if (measured === undefined) return { method: 'userspace', reason: 'the source file has no fs-verity' };
  if (measured.algorithm !== FS_VERITY_ALGORITHM_IDS[algorithm]) {
    return { method: 'userspace', reason: `the source's fs-verity uses ${algorithmName(measured.algorithm)}, not ${algorithm}` };
  }
  const digest: Digest = { algorithm: algorithmName(measured.algorithm) as HashAlgorithm, bytes: measured.digest };
  if (!trusted.some((expected) => digestsEqual(digest, expected))) {
    return { method: 'userspace', reason: `the source's fs-verity digest is ${formatDigest(digest)}, not a trusted one` };
  }
  return { method: 'kernel-fsverity', reason: 'the source\'s kernel fs-verity digest matches: the kernel verifies every block read' };
}
