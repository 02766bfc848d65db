// libcomposefs' mkcomposefs and composefs-info, the reference the image writer is compared with.
// Debian has composefs only from trixie+1 (sid: 1.0.8), built against a newer glibc than bookworm's: the
// packages (composefs, libcomposefs1 and that glibc, libssl3t64) are fetched into .cache/ from the machine's
// own Debian mirror with a private apt directory (the system's apt configuration is not touched) and run
// through the fetched dynamic loader.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fetchSidPackages, sh } from '../helpers/sid-packages.ts';
import { ROOT } from '../helpers/tools.ts';

const CACHE = path.join(ROOT, '.cache/composefs-sid');
const PACKAGES = ['composefs', 'libcomposefs1', 'libc6', 'libssl3t64'];

function fetch(): void {
  fetchSidPackages(CACHE, PACKAGES, false);
}

export interface ComposefsTools {
  /** argv prefixes: run as [...tool, ...args]. */
  mkcomposefs: string[];
  composefsInfo: string[];
  version: string;
}

export function composefsTools(): ComposefsTools {
  const root = path.join(CACHE, 'root');
  const loader = path.join(root, 'usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2');
  if (!fs.existsSync(path.join(root, 'usr/bin/mkcomposefs')) || !fs.existsSync(loader)) fetch();
  const prefix = [loader, '--library-path', path.join(root, 'usr/lib/x86_64-linux-gnu')];
  const version = fs.readdirSync(path.join(CACHE, 'apt', 'debs')).find((name) => name.startsWith('composefs_')) ?? 'composefs (unknown version)';
  return {
    mkcomposefs: [...prefix, path.join(root, 'usr/bin/mkcomposefs')],
    composefsInfo: [...prefix, path.join(root, 'usr/bin/composefs-info')],
    version,
  };
}

export function runTool(tool: string[], args: string[]): string {
  return sh(tool[0]!, [...tool.slice(1), ...args]);
}
