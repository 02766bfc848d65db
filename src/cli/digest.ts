// `sealroot digest`: the fs-verity digest of files, printed exactly as `fsverity digest` prints it, with its exit
// codes: 0; 1 when a file cannot be read or the parameters cannot be used (the files before it are printed);
// 2 for a usage error.
import * as fs from 'node:fs';
import { StepError } from '../errors.ts';
import { hashFile } from '../verity/hash-file.ts';
import { copiesRangesNatively, sizeThreadPool } from '../verity/ranges.ts';
import type { HashAlgorithm } from '../verity/digest.ts';
import { blockHashing, DEFAULT_BLOCK_SIZE, MerkleParamsError, type MerkleOptions } from '../verity/merkle.ts';
import { defaultWorkerCount, HashPool, PARALLEL_THRESHOLD } from '../verity/pool.ts';
import type { Command } from './command.ts';
import { parseCommandArgs, UsageError } from './command.ts';


function single(values: string[] | undefined, name: string): string | undefined {
  if (values === undefined) return undefined;
  if (values.length > 1) throw new UsageError(`--${name} can only be specified once`);
  return values[0];
}

/** Parses the options as fsverity-utils does: a decimal power-of-two block size, a hex salt, sha256|sha512. */
export function parseMerkleOptions(values: { 'hash-alg'?: string[]; 'block-size'?: string[]; salt?: string[] }): MerkleOptions {
  const algorithm = single(values['hash-alg'], 'hash-alg') ?? 'sha256';
  if (algorithm !== 'sha256' && algorithm !== 'sha512') throw new UsageError(`unknown hash algorithm: '${algorithm}' (sha256, sha512)`);
  const blockText = single(values['block-size'], 'block-size');
  let blockSize = DEFAULT_BLOCK_SIZE;
  if (blockText !== undefined) {
    blockSize = /^[0-9]+$/.test(blockText) ? Number(blockText) : NaN;
    if (!Number.isSafeInteger(blockSize) || blockSize <= 0 || blockSize >= 2 ** 31 || (blockSize & (blockSize - 1)) !== 0) {
      throw new UsageError(`invalid block size: ${blockText}; must be a power of 2`);
    }
  }
  const saltText = single(values.salt, 'salt');
  if (saltText !== undefined && !/^(?:[0-9a-fA-F]{2})*$/.test(saltText)) throw new UsageError('salt is not a valid hex string');
  return { algorithm: algorithm as HashAlgorithm, blockSize, salt: saltText === undefined ? undefined : Buffer.from(saltText, 'hex') };
}

async function digestFile(file: string, merkle: MerkleOptions, pool: () => HashPool): Promise<Buffer> {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (error) {
    throw new StepError('digest', "can't open the file for reading", { path: file, cause: error });
  }
  try {
    // fsverity-utils hashes st_size bytes, whatever the file: a pipe or a device (size 0) gives the empty digest.
    const { size } = fs.fstatSync(fd);
    sizeThreadPool();
    // Without the shim, worker threads (with it, hashFile reads on libuv's threads and needs none).
    const parallel = !copiesRangesNatively() && size >= PARALLEL_THRESHOLD && defaultWorkerCount() > 0;
    const result = await hashFile({ fd, size, merkle, path: file, pool: parallel ? pool() : undefined });
    if (result.bytes !== size) throw new StepError('digest', `the file ended early (${result.bytes} of ${size} bytes)`, { path: file });
    return result.digest;
  } catch (error) {
    if (error instanceof StepError) throw error;
    throw new StepError('digest', 'error reading the file', { path: file, cause: error });
  } finally {
    fs.closeSync(fd);
  }
}

export const digestCommand: Command = {
  name: 'digest',
  summary: "print files' fs-verity digests, as `fsverity digest` does",
  usage: `Usage: sealroot digest [--hash-alg=sha256|sha512] [--block-size=N] [--salt=HEX] [--compact] FILE...

Computes each FILE's fs-verity file digest in userspace (the kernel's algorithm; no fs-verity support needed)
and prints "ALG:HEX FILE", or only HEX with --compact, exactly as fsverity-utils' \`fsverity digest\`.
Defaults: sha256, block size 4096, no salt (what composefs and ostree use). Files are read and hashed on one
thread per CPU (libuv's), each taking the next 1 MiB range as it is done.
Exit status: 0; 1 when a file cannot be read or the block size/salt cannot be used (the digests of the files
before it are printed); 2 on a usage error.`,
  async run(argv, { stdout }) {
    const { values, positionals } = parseCommandArgs(argv, {
      'hash-alg': { type: 'string', multiple: true },
      'block-size': { type: 'string', multiple: true },
      salt: { type: 'string', multiple: true },
      compact: { type: 'boolean' },
    });
    if (positionals.length === 0) throw new UsageError('no FILE given');
    const merkle = parseMerkleOptions(values);
    try {
      blockHashing(merkle);
    } catch (error) {
      if (error instanceof MerkleParamsError) throw new StepError('digest', error.message);
      throw error;
    }
    let pool: HashPool | undefined;
    try {
      for (const file of positionals) {
        const digest = await digestFile(file, merkle, () => (pool ??= new HashPool(defaultWorkerCount())));
        stdout(values.compact === true ? `${digest.toString('hex')}\n` : `${merkle.algorithm}:${digest.toString('hex')} ${file}\n`);
      }
    } finally {
      await pool?.close();
    }
    return 0;
  },
};
