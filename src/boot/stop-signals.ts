// SIGTERM (systemd's start timeout), SIGINT and SIGHUP during a boot: instead of Node's default (exit at once,
// which would skip the undo and the TPM records), the boot is aborted and runs its failure path to the end (mounts
// undone, PCR capped, the boot-failed event extended). SIGKILL cannot be caught (see README.md beside this file).
import * as os from 'node:os';

export const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];

export interface StopSignals {
  /** Aborted (reason: the signal's name) by the first stop signal. */
  readonly signal: AbortSignal;
  /** The signal received, if any. */
  received(): NodeJS.Signals | undefined;
  /** 128 + the signal's number, as a shell reports a death by that signal. */
  exitCode(): number;
}

/**
 * Installs the handlers for the rest of the process's life: a second signal changes nothing. `onFirst` runs at once
 * on the first one (a line in the log: when the TPM hangs, the failure path's cap may wait for it).
 */
export function trapStopSignals(onFirst?: (signal: NodeJS.Signals) => void): StopSignals {
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) return;
    controller.abort(signal);
    onFirst?.(signal);
  };
  for (const signal of STOP_SIGNALS) process.on(signal, onSignal);
  const received = () => (controller.signal.aborted ? controller.signal.reason as NodeJS.Signals : undefined);
  return {
    signal: controller.signal,
    received,
    exitCode: () => {
      const signal = received();
      return signal === undefined ? 1 : 128 + (os.constants.signals[signal] ?? 0);
    },
  };
}
