import { errnoName, errnoNumber } from './sys/errno.ts';

/** A failed system call, as every wrapper in src/sys/ reports it: the call, the errno and, where there is one, the path. */
export class SysError extends Error {
  readonly syscall: string;
  readonly errno: number;
  readonly code: string;
  readonly path: string | undefined;

  constructor(syscall: string, errno: number, path?: string) {
    const code = errnoName(errno);
    super(`${syscall}${path === undefined ? '' : ` ${path}`}: ${code}`);
    this.name = 'SysError';
    this.syscall = syscall;
    this.errno = errno;
    this.code = code;
    this.path = path;
  }
}

export interface StepErrorOptions {
  path?: string;
  cause?: unknown;
}

/**
 * A failure of one boot step: which step, what went wrong, on which path, with the errno of the
 * underlying system call when there is one. Its message is the one line printed on the console and in kmsg.
 */
export class StepError extends Error {
  readonly step: string;
  readonly reason: string;
  readonly path: string | undefined;
  readonly errno: number | undefined;
  readonly code: string | undefined;

  constructor(step: string, reason: string, options: StepErrorOptions = {}) {
    const { errno, code } = errnoOf(options.cause);
    const detail = options.cause === undefined ? '' : `: ${causeText(options.cause)}`;
    const where = options.path === undefined ? '' : ` (${options.path})`;
    super(`${step}: ${reason}${where}${detail}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StepError';
    this.step = step;
    this.reason = reason;
    this.path = options.path;
    this.errno = errno;
    this.code = code;
  }
}

/** The errno carried by a SysError, a Node system error (err.code 'ENOENT', err.errno -2) or a StepError. */
export function errnoOf(error: unknown): { errno: number | undefined; code: string | undefined } {
  if (error instanceof SysError || error instanceof StepError) return { errno: error.errno, code: error.code };
  if (error instanceof Error && 'code' in error && typeof error.code === 'string') {
    const errno = errnoNumber(error.code);
    if (errno !== undefined) return { errno, code: error.code };
  }
  return { errno: undefined, code: undefined };
}

function causeText(cause: unknown): string {
  if (cause instanceof SysError) return `${cause.syscall}: ${cause.code}`;
  if (cause instanceof Error) {
    const { code } = errnoOf(cause);
    // Node's fs messages already name the path we print: keep the code and the call only.
    if (code !== undefined && 'syscall' in cause && typeof cause.syscall === 'string') return `${cause.syscall}: ${code}`;
    return cause.message;
  }
  return String(cause);
}

/** The one line to print for any error that ends a command. */
export function oneLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.replace(/\s*\n\s*/g, ' ');
}
