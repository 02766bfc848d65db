// A digest as sealroot prints and parses it: `sha256:<64 hex>` or `sha512:<128 hex>` (fsverity's notation); the bare
// hex is accepted too, and is what `mkimage --print-digest` prints, as mkcomposefs does.
import type { HashFunctions } from './blocks.ts';
import { constantTimeEqual, nodeCrypto } from '../crypto/primitives.ts';
import { isHex } from '../text/chars.ts';

export type HashAlgorithm = 'sha256' | 'sha512';

export const DIGEST_SIZES: Readonly<Record<HashAlgorithm, number>> = { sha256: 32, sha512: 64 };

export interface Digest {
  algorithm: HashAlgorithm;
  bytes: Buffer;
}

export class DigestSyntaxError extends Error {
  constructor(text: string) {
    super(`not a digest: '${text}' (expected sha256:<64 hex digits> or sha512:<128 hex digits>)`);
    this.name = 'DigestSyntaxError';
  }
}

/** Parses `sha256:<hex>` / `sha512:<hex>`; a bare hex string is taken by its length (64: SHA-256, 128: SHA-512). */
export function parseDigest(text: string): Digest {
  const trimmed = text.trim();
  const named = (['sha256', 'sha512'] as const).find((name) => trimmed.startsWith(`${name}:`));
  const digits = named === undefined ? trimmed : trimmed.slice(named.length + 1);
  if (!isHex(digits, true)) throw new DigestSyntaxError(text);
  const hex = digits.toLowerCase();
  const algorithm: HashAlgorithm | undefined = named ?? (hex.length === 64 ? 'sha256' : hex.length === 128 ? 'sha512' : undefined);
  if (algorithm === undefined || hex.length !== DIGEST_SIZES[algorithm] * 2) throw new DigestSyntaxError(text);
  return { algorithm, bytes: Buffer.from(hex, 'hex') };
}

export function formatDigest(digest: Digest): string {
  return `${digest.algorithm}:${digest.bytes.toString('hex')}`;
}

/**
 * node:crypto's hashing for hashDataBlocks, loaded only when a block is hashed with it: the shim's block hashing
 * (always in the executable) never is, so evaluating this object loads nothing. (A getter for the whole module was
 * evaluated as an argument on every range this thread hashed: node:crypto, ~86 ms of a QEMU TCG boot, came back.)
 */
export const NODE_HASHING: HashFunctions = {
  get hash() {
    return nodeCrypto().hash;
  },
  get createHash() {
    return nodeCrypto().createHash;
  },
};

/** Constant-time comparison (the time does not depend on where the digests differ); false when the algorithms differ. */
export function digestsEqual(a: Digest, b: Digest): boolean {
  if (a.algorithm !== b.algorithm || a.bytes.length !== b.bytes.length) return false;
  return constantTimeEqual(a.bytes, b.bytes);
}
