// The calling thread's scheduling policy (sched_setscheduler(2), sched_getscheduler(2), sched_getparam(2)): pid 0
// is the calling thread, not the whole process (sched(7)). Failures are returned as -errno, not thrown: the callers
// go on without the policy they asked for.
import { syscallOrErrno } from './native.ts';

/** include/uapi/linux/sched.h */
export const SCHED_OTHER = 0;
export const SCHED_FIFO = 1;
/** Or-ed into a policy: children start with the default policy. */
export const SCHED_RESET_ON_FORK = 0x40000000;

export interface SchedulingPolicy {
  policy: number;
  priority: number;
}

/** This thread's policy and static priority, or -errno. */
export function currentScheduling(): SchedulingPolicy | number {
  const policy = syscallOrErrno('sched_getscheduler', [0]);
  if (policy < 0) return policy;
  const param = Buffer.alloc(4); // struct sched_param { int sched_priority; }
  const result = syscallOrErrno('sched_getparam', [0, param]);
  if (result < 0) return result;
  return { policy, priority: param.readInt32LE(0) };
}

/** Sets this thread's policy and static priority: 0, or -errno (EPERM without CAP_SYS_NICE). */
export function setScheduling(scheduling: SchedulingPolicy): number {
  const param = Buffer.alloc(4);
  param.writeInt32LE(scheduling.priority, 0);
  return syscallOrErrno('sched_setscheduler', [0, scheduling.policy, param]);
}
