// `sealroot inspect`: validates a composefs image and lists its tree (composefs-info dump format).
import * as fs from 'node:fs';
import { StepError } from '../errors.ts';
import { dumpImage } from '../erofs/dump.ts';
import { ErofsReader, ImageError } from '../erofs/reader.ts';
import type { Command } from './command.ts';
import { parseCommandArgs, UsageError } from './command.ts';

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'check a composefs image strictly and list its tree',
  usage: `Usage: sealroot inspect IMAGE

Reads IMAGE with the strict reader the agent uses before mounting (any malformed structure is refused,
naming its offset) and prints one line per path, depth-first in name order, in the format of
libcomposefs' \`composefs-info dump\` (which \`mkcomposefs --from-file\` reads back):

  PATH SIZE [@]MODE NLINK UID GID RDEV MTIME.NSEC PAYLOAD CONTENT DIGEST [XATTR=VALUE...]

MODE is octal; '@' marks a further name of an inode already listed (PAYLOAD is then its first path).
PAYLOAD is the symlink target or the object path; CONTENT the inline content of small files; DIGEST the
fs-verity digest of an object's content. Bytes outside printable ASCII are written \\xNN; '-' is empty.
Overlay xattrs are shown as the source tree had them (escaping and whiteouts undone).`,
  async run(argv, { stdout }) {
    const { positionals } = parseCommandArgs(argv, {});
    if (positionals.length !== 1) throw new UsageError('expected IMAGE');
    const file = positionals[0]!;
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch (error) {
      throw new StepError('inspect', 'cannot open the image', { path: file, cause: error });
    }
    try {
      const image = fs.readFileSync(fd);
      const chunks: string[] = [];
      let pending = 0;
      const flush = (): void => {
        stdout(chunks.join(''));
        chunks.length = 0;
        pending = 0;
      };
      try {
        dumpImage(new ErofsReader(image), (text) => {
          chunks.push(text);
          pending += text.length;
          if (pending > 1 << 16) flush();
        });
      } catch (error) {
        if (error instanceof ImageError) throw new StepError('validate-image', error.message, { path: file });
        throw error;
      }
      flush();
      return 0;
    } finally {
      fs.closeSync(fd);
    }
  },
};
