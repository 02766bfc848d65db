// Hashing consecutive fs-verity blocks: the one operation that costs CPU, shared by the streaming hasher
// and the hashing worker threads. hashDataBlocks must stay self-contained (no imports, no outer names):
// the worker threads run its source text (see src/verity/worker.ts).
import type * as nodeCrypto from 'node:crypto';
import type { HashAlgorithm } from './digest.ts';

export interface BlockHashing {
  algorithm: HashAlgorithm;
  blockSize: number;
  digestSize: number;
  /** The salt zero-padded to the hash's compression block size; empty for no salt. */
  paddedSalt: Uint8Array;
}

export type HashFunctions = Pick<typeof nodeCrypto, 'hash' | 'createHash'>;

/**
 * The digests, concatenated, of the blocks of `data`; a last partial block is zero-padded to the block size
 * (fsverity.rst: "the last block is zero-padded if needed"). Each block hashed is H(padded salt || block).
 */
export function hashDataBlocks(crypto: HashFunctions, hashing: BlockHashing, data: Uint8Array): Buffer {
  const { algorithm, blockSize, digestSize, paddedSalt } = hashing;
  const blocks = Math.ceil(data.length / blockSize);
  const digests = Buffer.allocUnsafe(blocks * digestSize);
  for (let index = 0; index < blocks; index++) {
    let block = data.subarray(index * blockSize, (index + 1) * blockSize);
    if (block.length < blockSize) {
      const padded = new Uint8Array(blockSize);
      padded.set(block);
      block = padded;
    }
    // A 'binary' (latin1) string out and Buffer#write in: ~2x faster per 4 KiB block than a Buffer result, whose allocation
    // costs more than hashing the block (measured with node 24: 28 vs 69 ms for 32 MiB of SHA-256 blocks).
    const digest = paddedSalt.length === 0
      ? crypto.hash(algorithm, block, 'binary')
      : crypto.createHash(algorithm).update(paddedSalt).update(block).digest('binary');
    digests.write(digest, index * digestSize, 'latin1');
  }
  return digests;
}
