// Debian sid's ostree (2026.x, built against libcomposefs 1.0.8) run on this bookworm machine: the packages and
// their dependency closure (Depends and Pre-Depends, resolved at fetch time against sid's current lists) are
// downloaded into .cache/ostree-sid with a private apt directory (the system's apt configuration is not touched;
// the mirror is the one this machine already uses) and unpacked with dpkg-deb; the binaries run through the
// fetched dynamic loader. A failed fetch throws: the callers fail, they never skip.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fetchSidPackages } from './sid-packages.ts';
import { ROOT } from './tools.ts';

export const OSTREE_SID_CACHE = path.join(ROOT, '.cache/ostree-sid');
/** What is asked for; the closure of their dependencies comes along (ostree-boot: ostree-prepare-root, the generator). */
const WANTED = ['ostree', 'ostree-boot', 'libostree-1-1', 'libcomposefs1'];

function fetch(): void {
  fetchSidPackages(OSTREE_SID_CACHE, WANTED, true);
}

export interface OstreeSid {
  /** The unpacked packages. */
  root: string;
  /** argv prefix that runs a binary of `root` through sid's loader and libraries: [...prefix, binary, ...args]. */
  prefix: string[];
  ostree: string[];
  prepareRoot: string[];
  generator: string[];
  /** e.g. "ostree 2026.4-1, libostree-1-1 2026.4-1, libcomposefs1 1.0.8-1" (from the fetched .deb names). */
  versions: string;
}

/** Fetches (once, then from the cache) and returns how to run sid's ostree tools. Throws when the fetch fails. */
export function ostreeSid(): OstreeSid {
  const root = path.join(OSTREE_SID_CACHE, 'root');
  const libs = path.join(root, 'usr/lib/x86_64-linux-gnu');
  const loader = path.join(libs, 'ld-linux-x86-64.so.2');
  const need = [path.join(root, 'usr/bin/ostree'), loader, path.join(root, 'usr/lib/ostree/ostree-prepare-root'), path.join(root, 'usr/lib/systemd/system-generators/ostree-system-generator')];
  if (!need.every((file) => fs.existsSync(file))) fetch();
  for (const file of need) if (!fs.existsSync(file)) throw new Error(`ostree-sid: ${file} missing after the fetch`);
  const prefix = [loader, '--library-path', [libs, path.join(root, 'lib/x86_64-linux-gnu')].join(':')];
  const debs = fs.readdirSync(path.join(OSTREE_SID_CACHE, 'apt/debs'));
  const version = (name: string) => {
    const deb = debs.find((file) => file.startsWith(`${name}_`));
    return `${name} ${deb === undefined ? '(unknown)' : decodeURIComponent(deb.split('_')[1]!)}`;
  };
  return {
    root,
    prefix,
    ostree: [...prefix, path.join(root, 'usr/bin/ostree')],
    prepareRoot: [...prefix, path.join(root, 'usr/lib/ostree/ostree-prepare-root')],
    generator: [...prefix, need[3]!],
    versions: ['ostree', 'libostree-1-1', 'libcomposefs1'].map(version).join(', '),
  };
}
