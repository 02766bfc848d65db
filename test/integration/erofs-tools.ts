// libcomposefs' mkcomposefs and composefs-info, the reference the image writer is compared with.
// Debian has composefs only from trixie+1 (sid: 1.0.8), built against a newer glibc than bookworm's: the
// packages (composefs, libcomposefs1 and that glibc, libssl3t64) are fetched into .cache/ from the machine's
// own Debian mirror with a private apt directory (the system's apt configuration is not touched) and run
// through the fetched dynamic loader.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT } from '../helpers/tools.ts';

const CACHE = path.join(ROOT, '.cache/composefs-sid');
const PACKAGES = ['composefs', 'libcomposefs1', 'libc6', 'libssl3t64'];

function sh(command: string, args: string[], cwd?: string): string {
  const result = spawnSync(command, args, { encoding: 'utf8', cwd, maxBuffer: 1 << 26 });
  if (result.error !== undefined) throw result.error;
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.status}: ${result.stderr.trim()}`);
  return result.stdout;
}

function mirror(): string {
  const sources = '/etc/apt/sources.list.d/debian.sources';
  if (fs.existsSync(sources)) {
    const uri = /^URIs:\s*(\S+)/m.exec(fs.readFileSync(sources, 'utf8'));
    if (uri !== null) return uri[1]!;
  }
  const list = fs.existsSync('/etc/apt/sources.list') ? /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)/m.exec(fs.readFileSync('/etc/apt/sources.list', 'utf8')) : null;
  if (list === null) throw new Error('cannot find the Debian mirror this machine uses');
  return list[1]!;
}

function fetch(): void {
  const apt = path.join(CACHE, 'apt');
  for (const dir of ['lists/partial', 'cache/archives/partial', 'debs']) fs.mkdirSync(path.join(apt, dir), { recursive: true });
  fs.writeFileSync(path.join(apt, 'sources.list'), `deb ${mirror()} sid main\n`);
  const options = [
    '-o', `Dir::Etc::SourceList=${path.join(apt, 'sources.list')}`, '-o', 'Dir::Etc::SourceParts=/dev/null',
    '-o', `Dir::State::Lists=${path.join(apt, 'lists')}`, '-o', `Dir::Cache=${path.join(apt, 'cache')}`,
    '-o', 'APT::Sandbox::User=root',
  ];
  sh('apt-get', [...options, 'update']);
  sh('apt-get', [...options, 'download', ...PACKAGES], path.join(apt, 'debs'));
  const root = path.join(CACHE, 'root');
  fs.rmSync(root, { recursive: true, force: true });
  for (const deb of fs.readdirSync(path.join(apt, 'debs')).filter((name) => name.endsWith('.deb'))) {
    sh('dpkg-deb', ['-x', path.join(apt, 'debs', deb), root]);
  }
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
