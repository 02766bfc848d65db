// Pure: the boot timeline from the guest's console. The guest's scripts print `@@ T <label> <uptime>`; sealroot
// prints `step times (ms): name value, ...` once the root is ready. Uptime is seconds since the kernel started.

export interface Milestone {
  label: string;
  /** Seconds since kernel start. */
  at: number;
}

const STAMP = /^@@ T (\S+) (\d+(?:\.\d+)?)$/;
const STEPS = /sealroot: step times \(ms\): (.*)$/;
const RUN_INIT = /^\[\s*(\d+\.\d+)\] Run \/init as init process/;

export function stamps(lines: readonly string[]): Map<string, number> {
  const found = new Map<string, number>();
  for (const line of lines) {
    const match = STAMP.exec(line);
    if (match !== null && !found.has(match[1]!)) found.set(match[1]!, Number(match[2]));
    const init = RUN_INIT.exec(line);
    if (init !== null) found.set('kernel-runs-init', Number(init[1]));
  }
  return found;
}

/** sealroot's own step times, in the order it ran them. */
export function stepTimes(lines: readonly string[]): [string, number][] {
  for (const line of lines) {
    const match = STEPS.exec(line);
    if (match === null) continue;
    return match[1]!.split(',').map((part) => {
      const [name, value] = part.trim().split(/\s+/);
      return [name!, Number(value)];
    });
  }
  return [];
}

const PROCESS_START = 'process-start';
const UNSEALED_AFTER = 'cap-pcr';
const VERIFIED_AFTER = 'validate-image';

/**
 * The milestones of issue 7's breakdown: kernel start -> sealroot start -> digest unsealed -> image verified ->
 * root mounted -> switch-root. The points inside sealroot are placed from its step times, counted back from its
 * exit (what precedes the first step is the process start: Node under TCG).
 */
export function milestones(lines: readonly string[]): { milestones: Milestone[]; steps: [string, number][]; missing: string[] } {
  const found = stamps(lines);
  const steps = stepTimes(lines);
  const list: Milestone[] = [{ label: 'kernel start', at: 0 }];
  const missing: string[] = [];
  const add = (label: string, at: number | undefined): void => {
    if (at === undefined) missing.push(label);
    else list.push({ label, at });
  };
  add('initramfs init runs', found.get('kernel-runs-init') ?? found.get('init'));
  const start = found.get('sealroot-start');
  const end = found.get('sealroot-end');
  add('sealroot start', start);
  if (start !== undefined && end !== undefined && steps.length > 0) {
    const total = steps.reduce((sum, [, ms]) => sum + ms, 0) / 1000;
    let at = end - total;
    // sealroot may time its own process start (exec -> main) as a step; otherwise main() is where its steps begin.
    if (!steps.some(([name]) => name === PROCESS_START)) add('sealroot main() (process started)', at);
    for (const [name, ms] of steps) {
      at += ms / 1000;
      if (name === PROCESS_START) add('sealroot main() (process started)', at);
      if (name === UNSEALED_AFTER) add('digest unsealed (PCR capped)', at);
      if (name === VERIFIED_AFTER) add('image verified (sealed memfd, EROFS validated)', at);
    }
    add('root mounted (composefs + /etc, /var)', at);
  } else {
    missing.push('sealroot step times');
  }
  add('switch-root', found.get('switch-root'));
  add('root init runs', found.get('root-init'));
  return { milestones: list, steps, missing };
}

/** Seconds of sealroot's own steps after its process start. */
export function stepSeconds(steps: readonly [string, number][]): number {
  return steps.filter(([name]) => name !== PROCESS_START).reduce((sum, [, ms]) => sum + ms, 0) / 1000;
}

export function formatMilestones(list: readonly Milestone[]): string[] {
  let previous = 0;
  return list.map(({ label, at }) => {
    const line = `${at.toFixed(2).padStart(7)} s  (+${Math.max(0, at - previous).toFixed(2)} s)  ${label}`;
    previous = at;
    return line;
  });
}
