// A stack of undo actions: each step that changes the system (a mount, a loop device, a directory) pushes the
// action that reverses it; on failure everything is undone in reverse order, so nothing is left half-mounted.
import { oneLine } from '../errors.ts';
import type { Logger } from '../log.ts';

export class UndoStack {
  readonly #actions: { label: string; run: () => void }[] = [];

  push(label: string, run: () => void): void {
    this.#actions.push({ label, run });
  }

  /** Forgets every action: what was built is now owned by someone else (committed). */
  commit(): void {
    this.#actions.length = 0;
  }

  get size(): number {
    return this.#actions.length;
  }

  /**
   * Runs every action, newest first. An action that fails does not stop the others; the failures are logged
   * and returned, so the caller can report them next to the error that caused the unwinding.
   */
  unwind(log?: Logger): string[] {
    const failures: string[] = [];
    while (this.#actions.length > 0) {
      const action = this.#actions.pop()!;
      try {
        action.run();
      } catch (error) {
        const line = `cleanup ${action.label}: ${oneLine(error)}`;
        failures.push(line);
        log?.error(line);
      }
    }
    return failures;
  }
}
