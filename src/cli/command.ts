// What a subcommand is, and the argument parsing every subcommand shares.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Logger } from '../log.ts';

export interface CommandContext {
  log: Logger;
  stdout: (text: string) => void;
}

export interface Command {
  name: string;
  /** One line for `sealroot --help`. */
  summary: string;
  /** The full text for `sealroot help NAME` / `sealroot NAME --help`. */
  usage: string;
  /** Returns the process exit code; throws for failures (printed as one line, exit 1). */
  run(argv: string[], context: CommandContext): Promise<number>;
}

/** A mistake in how the command was called: printed with a pointer to --help, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** node:util parseArgs in strict mode, its errors turned into UsageError. */
export function parseCommandArgs<T extends Options>(argv: string[], options: T, allowPositionals = true) {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}
