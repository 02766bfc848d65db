// Milliseconds since the process started, for the boot's step times: process.uptime() reads the same monotonic
// clock as performance.now(), whose first use loads Node's perf_hooks modules (~0.7 ms natively, and far more
// under emulation, in the boot's first line).
export function msSinceStart(): number {
  return process.uptime() * 1000;
}
