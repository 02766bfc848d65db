// `sealroot mkimage`: a composefs image from a directory tree (libcomposefs mkcomposefs' layout and flags).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { StepError } from '../errors.ts';
import { DumpSyntaxError, parseDump } from '../erofs/dumpfile.ts';
import { TreeReader } from '../erofs/source.ts';
import type { TreeNode } from '../erofs/tree.ts';
import { TreeError, writeImage } from '../erofs/writer.ts';
import type { HashAlgorithm } from '../verity/digest.ts';
import { fsVerityDigest } from '../verity/merkle.ts';
import type { Command } from './command.ts';
import { parseCommandArgs, UsageError } from './command.ts';

function parseVersion(text: string | undefined, name: string, fallback: number): number {
  if (text === undefined) return fallback;
  if (!/^[01]$/.test(text)) throw new UsageError(`--${name} must be 0 or 1, not '${text}'`);
  return Number(text);
}

function readDumpFile(source: string): TreeNode {
  let text: string;
  try {
    text = fs.readFileSync(source === '-' ? 0 : source, 'latin1');
  } catch (error) {
    throw new StepError('mkimage', 'cannot read the dump', { path: source, cause: error });
  }
  try {
    return parseDump(text);
  } catch (error) {
    if (error instanceof DumpSyntaxError) throw new StepError('mkimage', error.message, { path: source });
    throw error;
  }
}

/** Writes to a temporary file beside `file`, fsyncs it and renames it into place. */
function writeAtomically(file: string, bytes: Buffer): void {
  const temp = path.join(path.dirname(path.resolve(file)), `.${path.basename(file)}.tmp-${process.pid}`);
  try {
    fs.writeFileSync(temp, bytes, { mode: 0o644, flag: 'wx' });
    const fd = fs.openSync(temp, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temp, file);
  } catch (error) {
    fs.rmSync(temp, { force: true });
    throw new StepError('mkimage', 'cannot write the image', { path: file, cause: error });
  }
}

export const mkimageCommand: Command = {
  name: 'mkimage',
  summary: 'make a composefs image (EROFS + objects) from a directory tree',
  usage: `Usage: sealroot mkimage [--digest-store=DIR] [--hash-alg sha256|sha512] [--print-digest]
                        [--min-version N] [--max-version N] [--use-epoch] [--skip-devices]
                        [--skip-xattrs | --user-xattrs] [--no-hardlinks] [--from-file] SOURCE IMAGE
       sealroot mkimage --print-digest-only [OPTIONS] SOURCE

Writes IMAGE, a composefs EROFS image of the tree at SOURCE laid out as libcomposefs' mkcomposefs does
(same tree, same bytes; see src/erofs/README.md for the known differences). Files of at most 64 bytes are
stored in the image; larger ones are referenced by their fs-verity digest (trusted.overlay.metacopy and
trusted.overlay.redirect=/XX/<rest>) and, with --digest-store, copied to DIR/XX/<rest of the digest>
(atomically; existing objects are reused; fs-verity enabled where DIR's filesystem supports it).

  --digest-store=DIR  the objects directory to fill
  --hash-alg ALG      fs-verity hash of the objects and of the image: sha256 (default, composefs/ostree)
                      or sha512 (bootc)
  --print-digest      print the image's fs-verity digest on stdout as mkcomposefs does: the bare hex, one
                      line (64 digits for sha256, 128 for sha512); sealroot's other commands print digests
                      as ALG:<hex> and accept either form
  --print-digest-only print the digest and write no image (objects are still stored with --digest-store)
  --min-version N     lowest composefs format version (default 0)
  --max-version N     highest composefs format version (default 1; 1 is used when the tree has whiteouts)
  --use-epoch         make every mtime 0
  --skip-devices      leave out character and block devices (whiteouts included)
  --skip-xattrs       store no xattrs of the source
  --user-xattrs       store only the source's user.* xattrs
  --no-hardlinks      write every name of a hard-linked file as its own inode (nlink 1), as mkcomposefs
                      1.0.8 does with a directory; by default hard links are kept (one inode, its nlink).
                      For a directory SOURCE, the image is byte-identical to mkcomposefs' only with
                      --no-hardlinks (without it, when the tree has hard links, it equals what
                      mkcomposefs --from-file makes of sealroot inspect's dump of it)
  --from-file         SOURCE is a dump (the format sealroot inspect and composefs-info dump print; - for
                      stdin), not a directory; its digests and payloads are taken as they are

The image is written to a temporary file beside IMAGE and renamed into place.`,
  async run(argv, { stdout, log }) {
    const { values, positionals } = parseCommandArgs(argv, {
      'digest-store': { type: 'string' },
      'hash-alg': { type: 'string', default: 'sha256' },
      'print-digest': { type: 'boolean', default: false },
      'print-digest-only': { type: 'boolean', default: false },
      'min-version': { type: 'string' },
      'max-version': { type: 'string' },
      'from-file': { type: 'boolean', default: false },
      'no-hardlinks': { type: 'boolean', default: false },
      'use-epoch': { type: 'boolean', default: false },
      'skip-devices': { type: 'boolean', default: false },
      'skip-xattrs': { type: 'boolean', default: false },
      'user-xattrs': { type: 'boolean', default: false },
    });
    const digestOnly = values['print-digest-only'];
    if (digestOnly ? positionals.length !== 1 : positionals.length !== 2) throw new UsageError(digestOnly ? 'expected SOURCE only with --print-digest-only' : 'expected SOURCE and IMAGE');
    const [source, image] = positionals as [string, string | undefined];
    const algorithm = values['hash-alg'];
    if (algorithm !== 'sha256' && algorithm !== 'sha512') throw new UsageError(`unknown --hash-alg '${algorithm}' (sha256 or sha512)`);
    const minVersion = parseVersion(values['min-version'], 'min-version', 0);
    const maxVersion = parseVersion(values['max-version'], 'max-version', 1);
    const fromFile = values['from-file'];
    if (fromFile && values['digest-store'] !== undefined) throw new UsageError('--digest-store needs a directory SOURCE, not --from-file');
    if (values['skip-xattrs'] && values['user-xattrs']) throw new UsageError('--skip-xattrs and --user-xattrs exclude each other');

    const started = performance.now();
    const reader = new TreeReader({
      algorithm: algorithm as HashAlgorithm, digestStore: values['digest-store'], hardlinks: !values['no-hardlinks'],
      useEpoch: values['use-epoch'], skipDevices: values['skip-devices'],
      xattrs: values['skip-xattrs'] ? 'none' : values['user-xattrs'] ? 'user' : 'all',
    });
    let written: ReturnType<typeof writeImage>;
    try {
      const tree = fromFile ? readDumpFile(source) : reader.read(source);
      try {
        written = writeImage(tree, { algorithm: algorithm as HashAlgorithm, minVersion, maxVersion });
      } catch (error) {
        if (error instanceof TreeError) throw new StepError('mkimage', error.message, { path: source });
        throw error;
      }
      reader.commit();
    } finally {
      reader.abort();
    }

    if (image !== undefined) writeAtomically(image, written.image);
    const { stats } = reader;
    log.info(`mkimage: ${written.inodes} inodes, ${written.image.length} bytes, format version ${written.composefsVersion}; `
      + `${stats.files} files, ${stats.objectsWritten} objects written, ${stats.objectsReused} reused`
      + `${stats.objectsWithoutVerity > 0 ? `, ${stats.objectsWithoutVerity} without fs-verity (not supported by the store's filesystem)` : ''}`
      + ` (${Math.round(performance.now() - started)} ms)`);
    if (values['print-digest'] || digestOnly) {
      // mkcomposefs prints the bare hex (and ostree/bootc build scripts parse that); the length names the algorithm.
      stdout(`${fsVerityDigest(written.image, { algorithm: algorithm as HashAlgorithm }).toString('hex')}\n`);
    }
    return 0;
  },
};
