// The boot's cryptographic primitives without node:crypto: hashes and the constant-time compare through the syscall
// shim, random bytes through getrandom(2). Loading node:crypto costs ~90 ms of a boot under QEMU TCG (51 builtin
// modules; ~4 ms natively), more than everything the boot hashes with it. Sources run without a built shim fall
// back to node:crypto, loaded at the call.
import type * as NodeCrypto from 'node:crypto';
import { cryptoShim, type NativeCrypto, type NativeDigestAlgorithm, shimAvailable, syscallRetrying } from '../sys/native.ts';

const NATIVE_DIGESTS: ReadonlySet<string> = new Set<NativeDigestAlgorithm>(['sha1', 'sha256', 'sha384', 'sha512']);

/** undefined: not looked for yet; null: no shim with digests (the sources without a built one). */
let native: NativeCrypto | null | undefined;

function nativeCrypto(): NativeCrypto | undefined {
  native ??= cryptoShim() ?? null;
  return native ?? undefined;
}

/** node:crypto, loaded at the call: only for what the shim does not do, and for the CLI's keys and signatures. */
export function nodeCrypto(): typeof NodeCrypto {
  return process.getBuiltinModule('node:crypto');
}

/** Whether hash() knows `algorithm` (node:crypto's name); only an algorithm the shim lacks loads node:crypto to ask. */
export function canHash(algorithm: string): boolean {
  return NATIVE_DIGESTS.has(algorithm) || nodeCrypto().getHashes().includes(algorithm);
}

/** The digest of the parts' concatenation; `algorithm` in node:crypto's naming (sha1, sha256, sha384, sha512, ...). */
export function hash(algorithm: string, ...parts: Uint8Array[]): Buffer {
  const shim = NATIVE_DIGESTS.has(algorithm) ? nativeCrypto() : undefined;
  if (shim !== undefined) return shim.digest(algorithm as NativeDigestAlgorithm, ...parts);
  const hasher = nodeCrypto().createHash(algorithm);
  for (const part of parts) hasher.update(part);
  return hasher.digest();
}

/** Same bytes, in a time that does not depend on where they differ; false for different lengths. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  const shim = nativeCrypto();
  if (shim !== undefined) return shim.equalConstantTime(a, b);
  return a.length === b.length && nodeCrypto().timingSafeEqual(a, b);
}

/**
 * `size` bytes from the kernel's CSPRNG. getrandom(2) with no flags blocks only until the CRNG is first seeded, as
 * OpenSSL's seeding (node:crypto's randomBytes) does; a read of up to 256 bytes is never short once it is, larger
 * ones may be (random(7)), and a signal interrupts a blocked call (EINTR): both are retried.
 */
export function randomBytes(size: number): Buffer {
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`randomBytes: ${size} is not a byte count`);
  if (!shimAvailable()) return nodeCrypto().randomBytes(size);
  const out = Buffer.alloc(size);
  for (let filled = 0; filled < size;) {
    const got = syscallRetrying('getrandom', [out.subarray(filled), size - filled, 0]);
    // Never 0 for a non-empty buffer (drivers/char/random.c); a loop that cannot end is not worth the trust.
    if (got === 0) throw new Error('getrandom returned no bytes');
    filled += got;
  }
  return out;
}
