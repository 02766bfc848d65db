// Every subcommand, registered in one place. Each lives in its own file beside this one.
import { bootCommand } from './boot.ts';
import type { Command } from './command.ts';
import { inspectCommand } from './inspect.ts';
import { approveCommand } from './approve.ts';
import { pcrCommand } from './pcr.ts';
import { provisionCommand } from './provision.ts';
import { unsealCommand } from './unseal.ts';
import { digestCommand } from './digest.ts';
import { loadCommand } from './load.ts';
import { mkimageCommand } from './mkimage.ts';
import { mountCommand } from './mount.ts';
import { selftestCommand } from './selftest.ts';

export const COMMANDS: readonly Command[] = [
  inspectCommand,
  approveCommand,
  pcrCommand,
  provisionCommand,
  unsealCommand,
  bootCommand,
  digestCommand,
  loadCommand,
  mkimageCommand,
  mountCommand,
  selftestCommand,
];
