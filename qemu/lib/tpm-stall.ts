// The start-timeout scenario's stalled TPM: swtpm is stopped (SIGSTOP) when sealroot.service starts sealroot, so the
// guest's TPM commands hang in the kernel (its default TPM2 command duration is 120 s), as a hung TPM or driver
// would; it is continued when sealroot says it received the unit's SIGTERM, so that its failure path can record the
// failure in the TPM before the unit's stop timeout.
import type { ChildProcess } from 'node:child_process';

export interface TpmStall {
  onLine(line: string): void;
  /** Continue swtpm whatever happened (before stopping it). */
  release(): void;
  /** What happened, for the verdict: stopped at / continued at (console lines). */
  readonly events: string[];
}

export function stallTpm(swtpm: ChildProcess): TpmStall {
  let stopped = false;
  const events: string[] = [];
  const signal = (name: NodeJS.Signals) => {
    if (swtpm.exitCode === null && swtpm.signalCode === null) swtpm.kill(name);
  };
  return {
    events,
    onLine(line) {
      if (!stopped && line.startsWith('@@ T sealroot-start ')) {
        stopped = true;
        signal('SIGSTOP');
        events.push(`swtpm stopped at ${line}`);
      } else if (stopped && /sealroot: received SIGTERM/.test(line) && events.length === 1) {
        signal('SIGCONT');
        events.push(`swtpm continued at ${line.trim()}`);
      }
    },
    release() {
      signal('SIGCONT');
    },
  };
}
