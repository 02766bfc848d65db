// Every subcommand, registered in one place. Each lives in its own file beside this one.
import type { Command } from './command.ts';
import { selftestCommand } from './selftest.ts';

export const COMMANDS: readonly Command[] = [
  selftestCommand,
];
