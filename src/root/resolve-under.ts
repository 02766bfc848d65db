// Resolves a path inside a root directory the way it would resolve after chroot: absolute symlink targets start
// again at the root and `..` never climbs above it. realpath(3) (what ostree-prepare-root uses) would follow an
// absolute link out of /sysroot into the initramfs.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LayoutError } from './plan.ts';

const MAX_LINKS = 40; // as the kernel's MAXSYMLINKS

export function resolveUnder(root: string, inside: string, options: { allowMissing?: boolean } = {}): string {
  const parts = inside.split('/').filter((part) => part !== '' && part !== '.');
  const resolved: string[] = [];
  let links = 0;
  while (parts.length > 0) {
    const part = parts.shift()!;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const candidate = path.join(root, ...resolved, part);
    let stat: fs.Stats;
    try {
      stat = fs.lstatSync(candidate);
    } catch (error) {
      // The rest does not exist yet: whoever uses the path reports that, naming it.
      if (options.allowMissing === true) return path.join(root, ...resolved, part, ...parts);
      throw new LayoutError(`${path.join('/', ...resolved, part)} does not exist under ${root}: ${(error as NodeJS.ErrnoException).code ?? error}`);
    }
    if (!stat.isSymbolicLink()) {
      resolved.push(part);
      continue;
    }
    if (++links > MAX_LINKS) throw new LayoutError(`too many symbolic links resolving ${inside} under ${root}`);
    const target = fs.readlinkSync(candidate);
    if (target.startsWith('/')) resolved.length = 0;
    parts.unshift(...target.split('/').filter((p) => p !== '' && p !== '.'));
  }
  return path.join(root, ...resolved);
}
