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
