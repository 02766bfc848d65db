// Every subcommand, registered in one place. Each lives in its own file beside this one.
import type { Command } from './command.ts';
import { mkimageCommand } from './mkimage.ts';
import { selftestCommand } from './selftest.ts';

export const COMMANDS: readonly Command[] = [
  mkimageCommand,
  selftestCommand,
];
