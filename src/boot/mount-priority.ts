// The mount steps hold the CPU: systemd (PID 1) re-reads the whole of /proc/self/mountinfo after every change to the
// mount table (src/core/mount.c: mount_dispatch_io -> mount_process_proc_self_mountinfo), and the steps make seven
// (the EROFS attached for overlayfs and detached, the composefs root, /sysroot, /etc, /var, the move to the sysroot).
// On one CPU each change woke PID 1, which preempted sealroot and parsed the table: measured under QEMU TCG, the
// mount-composefs and prepare-root steps took ~150 ms, of which sealroot's own CPU was about half.
//
// For those two steps only, this thread runs SCHED_FIFO at the lowest real-time priority: PID 1, udev and the
// journal run when it sleeps (an I/O, the loop device's reads) and after the steps, reading the table once. Measured
// the same way: the two steps ~70 ms, and the initramfs as a whole no slower. Only this thread (libuv's and V8's
// keep their policy), for tens of ms, and well inside the kernel's real-time throttling (sched_rt_runtime_us:
// 950 ms of every second). Without the right to it (no CAP_SYS_NICE: a container), the steps run as before.
import type { Logger } from '../log.ts';
import { errnoName } from '../sys/errno.ts';
import { currentScheduling, SCHED_FIFO, SCHED_OTHER, SCHED_RESET_ON_FORK, setScheduling } from '../sys/scheduling.ts';

/** Raises this thread to SCHED_FIFO 1; returns what puts its policy back (call it on every path, once). */
export function holdCpuForMounts(log: Logger): () => void {
  const before = currentScheduling();
  if (typeof before === 'number') {
    log.info(`mount steps at the usual priority: sched_getscheduler: ${errnoName(-before)}`);
    return () => undefined;
  }
  // Another policy (a unit's CPUSchedulingPolicy=): left as it is.
  if ((before.policy & ~SCHED_RESET_ON_FORK) !== SCHED_OTHER) return () => undefined;
  const raised = setScheduling({ policy: SCHED_FIFO, priority: 1 });
  if (raised < 0) {
    log.info(`mount steps at the usual priority: sched_setscheduler(SCHED_FIFO): ${errnoName(-raised)}`);
    return () => undefined;
  }
  let restored = false;
  return () => {
    if (restored) return;
    restored = true;
    const result = setScheduling(before);
    if (result < 0) log.warn(`cannot put the scheduling policy back (sched_setscheduler): ${errnoName(-result)}`);
  };
}
