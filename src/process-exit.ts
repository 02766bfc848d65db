// How the CLI ends the process once its command is done and its output is out: process.exit(), or, once the
// syscall shim is loaded (src/sys/native.ts offers it then), exit_group(2) after the 'exit' listeners, without
// Node's teardown. Kept apart so that the CLI's entry does not load the syscall layer for --version.
let exitNow: ((code: number) => never) | undefined;

export function offerExitNow(exit: (code: number) => never): void {
  exitNow = exit;
}

export function endProcess(code: number): never {
  return exitNow === undefined ? process.exit(code) : exitNow(code);
}
