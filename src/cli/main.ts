// sealroot's entry point: finds the subcommand, runs it, turns any failure into one line and an exit code.
import { oneLine } from '../errors.ts';
import { VERSION } from '../version.ts';
import { UsageError, type Command, type CommandContext } from './command.ts';
import { COMMANDS, type CommandEntry } from './commands.ts';
import { createLogger, inInitramfs } from '../log.ts';
import { endProcess } from '../process-exit.ts';
import { stdioFlushed, writeStdio } from '../stdio.ts';

async function overview(): Promise<string> {
  const commands = await Promise.all(COMMANDS.map((entry) => entry.load()));
  const width = Math.max(...commands.map((command) => command.name.length));
  const lines = commands.map((command) => `  ${command.name.padEnd(width)}  ${command.summary}`);
  return `sealroot ${VERSION}: mount a composefs root only when it is provably the image its owner trusted.

Usage: sealroot COMMAND [OPTIONS] [ARGS]
       sealroot help COMMAND | sealroot COMMAND --help
       sealroot --version

Commands:
${lines.join('\n')}

Exit status: 0 on success, 1 on failure (one line on stderr, and in /dev/kmsg inside an initramfs), 2 on a usage error.
`;
}

function find(name: string): CommandEntry | undefined {
  return COMMANDS.find((entry) => entry.name === name);
}

export async function main(argv: string[]): Promise<number> {
  const context: CommandContext = {
    log: createLogger({ kmsg: inInitramfs() }),
    stdout: (text) => writeStdio(1, text),
  };
  const [first, ...rest] = argv;
  if (first === undefined || first === '--help' || first === '-h') {
    context.stdout(await overview());
    return first === undefined ? 2 : 0;
  }
  if (first === '--version' || first === '-V') {
    context.stdout(`sealroot ${VERSION}\n`);
    return 0;
  }
  if (first === 'help') {
    const target = rest[0] === undefined ? undefined : await find(rest[0])?.load();
    context.stdout(target === undefined ? await overview() : `${target.usage}\n`);
    return rest[0] === undefined || target !== undefined ? 0 : 2;
  }
  const entry = find(first);
  if (entry === undefined) {
    writeStdio(2, `sealroot: unknown command '${first}' (see sealroot --help)\n`);
    return 2;
  }
  const command: Command = await entry.load();
  if (rest.includes('--help') || rest.includes('-h')) {
    context.stdout(`${command.usage}\n`);
    return 0;
  }
  try {
    return await command.run(rest, context);
  } catch (error) {
    if (error instanceof UsageError) {
      writeStdio(2, `sealroot ${command.name}: ${error.message} (see sealroot ${command.name} --help)\n`);
      return 2;
    }
    context.log.error(oneLine(error));
    if (process.env.SEALROOT_DEBUG === '1' && error instanceof Error) writeStdio(2, `${error.stack}\n`);
    return 1;
  }
}

/** PID 1 must never exit (the kernel panics): whatever ends the command, go to the emergency path instead. */
function exitOrEmergency(code: number): void {
  if (process.pid !== 1) {
    process.exitCode = code;
    // At once when everything written is out: Node's orderly teardown (threads joined, heap freed) cost ~20 ms at
    // the end of every boot, measured. Output still queued (a pipe that was full) is left to drain first.
    if (stdioFlushed()) endProcess(code);
    return;
  }
  const log = createLogger({ kmsg: inInitramfs() });
  log.error(`sealroot as PID 1 ended with exit status ${code}`);
  // Loaded here, not at start: it pulls in the syscall layer, which --version and the other commands do not need
  // at load time. In the executable the import is of bundled code (no file is read).
  void import('../boot/handover.ts').then(({ emergency }) => emergency(log), (error: unknown) => {
    writeStdio(2, `sealroot: cannot load the emergency path: ${oneLine(error)}\n`);
  });
}

main(process.argv.slice(2)).then(exitOrEmergency, (error: unknown) => {
  writeStdio(2, `sealroot: internal error: ${oneLine(error)}\n`);
  exitOrEmergency(70);
});
