// Pure: the kernel command line as the kernel splits it (lib/cmdline.c next_arg): whitespace-separated
// parameters, double quotes group spaces (around the value or the whole parameter) and are dropped, and
// everything after a lone `--` is passed to init as its arguments.
import { isWhitespace } from '../text/chars.ts';

export interface KernelParam {
  key: string;
  /** undefined for a bare flag such as `ro`. */
  value: string | undefined;
}

export interface Cmdline {
  params: readonly KernelParam[];
  /** Arguments after `--`: the kernel hands them to init. */
  initArgs: readonly string[];
}

export class CmdlineError extends Error {
  readonly key: string;
  constructor(key: string, message: string) {
    super(message);
    this.name = 'CmdlineError';
    this.key = key;
  }
}

function splitArgs(text: string): string[] {
  const args: string[] = [];
  let i = 0;
  while (i < text.length) {
    while (i < text.length && isWhitespace(text[i]!)) i++;
    if (i >= text.length) break;
    let arg = '';
    let quoted = false;
    for (; i < text.length; i++) {
      const c = text[i]!;
      if (c === '"') {
        quoted = !quoted;
        continue;
      }
      if (!quoted && isWhitespace(c)) break;
      arg += c;
    }
    args.push(arg);
  }
  return args;
}

export function parseCmdline(text: string): Cmdline {
  const args = splitArgs(text);
  const end = args.indexOf('--');
  const own = end < 0 ? args : args.slice(0, end);
  const params = own.map((arg): KernelParam => {
    const eq = arg.indexOf('=');
    return eq < 0 ? { key: arg, value: undefined } : { key: arg.slice(0, eq), value: arg.slice(eq + 1) };
  });
  return { params, initArgs: end < 0 ? [] : args.slice(end + 1) };
}

/**
 * The value of `key=`, or undefined when absent. A key given twice with different values is refused: which one
 * the boot would use must never depend on who reads the line (ostree takes the first, the kernel often the last).
 */
export function kargValue(cmdline: Cmdline, key: string): string | undefined {
  const values = [...new Set(cmdline.params.filter((param) => param.key === key).map((param) => param.value ?? ''))];
  if (values.length > 1) throw new CmdlineError(key, `${key}= is given more than once with different values (${values.map((v) => `'${v}'`).join(', ')})`);
  return values[0];
}

export function kargPresent(cmdline: Cmdline, key: string): boolean {
  return cmdline.params.some((param) => param.key === key);
}
