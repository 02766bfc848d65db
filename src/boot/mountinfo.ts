// /proc/self/mountinfo (Documentation/filesystems/proc.rst 3.5): which paths are mount points.
import * as fs from 'node:fs';

export interface MountEntry {
  id: number;
  parent: number;
  mountPoint: string;
  options: string;
  fsType: string;
  source: string;
  superOptions: string;
}

/** Mount points escape space, tab, newline and backslash as octal (\040 ...). */
function unescape(field: string): string {
  // Most fields have no escape: no regular expression to compile and run then (each costs ms under emulation).
  if (!field.includes('\\')) return field;
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** Pure. */
export function parseMountinfo(text: string): MountEntry[] {
  return text.split('\n').filter((line) => line !== '').map((line) => {
    const [before, after = ''] = line.split(' - ');
    const fields = before!.split(' ');
    const tail = after.split(' ');
    return {
      id: Number(fields[0]),
      parent: Number(fields[1]),
      mountPoint: unescape(fields[4] ?? ''),
      options: fields[5] ?? '',
      fsType: tail[0] ?? '',
      source: unescape(tail[1] ?? ''),
      superOptions: tail[2] ?? '',
    };
  });
}

export function readMountinfo(): MountEntry[] {
  return parseMountinfo(fs.readFileSync('/proc/self/mountinfo', 'utf8'));
}

export function isMountPoint(path: string): boolean {
  const real = fs.realpathSync(path);
  return readMountinfo().some((entry) => entry.mountPoint === real);
}
