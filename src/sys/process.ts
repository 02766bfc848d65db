// execve(2) for handing over to the real init.
import { addressOf, syscall } from './native.ts';

/** execve(2): replaces this process; returns only by throwing. */
export function execve(file: string, argv: readonly string[], envp: readonly string[]): never {
  const keep: Buffer[] = [];
  const pointerArray = (strings: readonly string[]): Buffer => {
    const array = Buffer.alloc(8 * (strings.length + 1));
    strings.forEach((value, index) => {
      const bytes = Buffer.from(`${value}\0`, 'utf8');
      keep.push(bytes);
      array.writeBigUInt64LE(addressOf(bytes), 8 * index);
    });
    keep.push(array);
    return array;
  };
  syscall('execve', [file, pointerArray(argv), pointerArray(envp)], file);
  throw new Error(`execve ${file} returned`);
}

// reboot(2) magic numbers and commands (include/uapi/linux/reboot.h).
const LINUX_REBOOT_MAGIC1 = 0xfee1dead;
const LINUX_REBOOT_MAGIC2 = 672274793;
export const LINUX_REBOOT_CMD_POWER_OFF = 0x4321fedc;
export const LINUX_REBOOT_CMD_HALT = 0xcdef0123;

/** reboot(2): halts or powers off the machine (needs CAP_SYS_BOOT); returns only by throwing. */
export function rebootSystem(command: number): never {
  syscall('sync', []);
  syscall('reboot', [LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, command, null]);
  throw new Error('reboot(2) returned');
}

const F_SETFD = 2;

/**
 * Clears FD_CLOEXEC on fds 0, 1 and 2. Node opens its stdio close-on-exec: without this, an exec'd init or
 * emergency shell would start with no console (every write EBADF).
 */
export function keepStdioAcrossExec(): void {
  for (const fd of [0, 1, 2]) syscall('fcntl', [fd, F_SETFD, 0], `fd ${fd}`);
}
