// Every subcommand, registered in one place and listed by --help in this order: the boot step first, then its
// parts, the image tools, the TPM tools, diagnostics. Each lives in its own file beside this one.
import { approveCommand } from './approve.ts';
import { bootCommand } from './boot.ts';
import type { Command } from './command.ts';
import { digestCommand } from './digest.ts';
import { inspectCommand } from './inspect.ts';
import { loadCommand } from './load.ts';
import { mkimageCommand } from './mkimage.ts';
import { mountCommand } from './mount.ts';
import { pcrCommand } from './pcr.ts';
import { predictCommand } from './predict.ts';
import { provisionCommand } from './provision.ts';
import { selftestCommand } from './selftest.ts';
import { unsealCommand } from './unseal.ts';

export const COMMANDS: readonly Command[] = [
  bootCommand,
  mountCommand,
  loadCommand,
  digestCommand,
  mkimageCommand,
  inspectCommand,
  provisionCommand,
  unsealCommand,
  approveCommand,
  predictCommand,
  pcrCommand,
  selftestCommand,
];
