// Debian sid's ostree (2026.x, built against libcomposefs 1.0.8) run on this bookworm machine: the packages and
// their dependency closure (Depends and Pre-Depends, resolved at fetch time against sid's current lists) are
// downloaded into .cache/ostree-sid with a private apt directory (the system's apt configuration is not touched;
// the mirror is the one this machine already uses) and unpacked with dpkg-deb; the binaries run through the
// fetched dynamic loader. A failed fetch throws: the callers fail, they never skip.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT } from './tools.ts';

export const OSTREE_SID_CACHE = path.join(ROOT, '.cache/ostree-sid');
/** What is asked for; the closure of their dependencies comes along (ostree-boot: ostree-prepare-root, the generator). */
const WANTED = ['ostree', 'ostree-boot', 'libostree-1-1', 'libcomposefs1'];

function sh(command: string, args: string[], cwd?: string): string {
  const result = spawnSync(command, args, { encoding: 'utf8', cwd, maxBuffer: 1 << 26 });
  if (result.error !== undefined) throw result.error;
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.status}: ${result.stderr.trim()}`);
  return result.stdout;
}

/** The Debian mirror this machine's apt uses (read from its configuration, never written into the project). */
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

function aptOptions(apt: string): string[] {
  return [
    '-o', `Dir::Etc::SourceList=${path.join(apt, 'sources.list')}`, '-o', 'Dir::Etc::SourceParts=/dev/null',
    '-o', `Dir::State::Lists=${path.join(apt, 'lists')}`, '-o', `Dir::Cache=${path.join(apt, 'cache')}`,
    '-o', `Dir::State::Status=${path.join(apt, 'status')}`, '-o', 'APT::Sandbox::User=root',
    '-o', 'APT::Architecture=amd64', '-o', 'APT::Architectures=amd64',
  ];
}

function fetch(): void {
  const apt = path.join(OSTREE_SID_CACHE, 'apt');
  fs.rmSync(path.join(apt, 'debs'), { recursive: true, force: true });
  for (const dir of ['lists/partial', 'cache/archives/partial', 'debs']) fs.mkdirSync(path.join(apt, dir), { recursive: true });
  fs.writeFileSync(path.join(apt, 'sources.list'), `deb ${mirror()} sid main\n`);
  // An empty dpkg status: the closure is computed as for an empty system (bookworm's installed versions are too old).
  fs.writeFileSync(path.join(apt, 'status'), '');
  const options = aptOptions(apt);
  sh('apt-get', [...options, 'update']);
  // The closure as apt would install it on an empty system (one alternative of each `a | b`), versions from sid's
  // lists at this moment: "Inst <name> (<version> ...".
  const plan = sh('apt-get', [...options, '-s', 'install', '--no-install-recommends', ...WANTED]);
  const closure = [...plan.matchAll(/^Inst (\S+) /gm)].map((match) => match[1]!);
  for (const name of WANTED) if (!closure.includes(name)) throw new Error(`ostree-sid: ${name} is not in sid's lists (apt-get -s install: ${plan.slice(-300)})`);
  sh('apt-get', [...options, 'download', ...closure], path.join(apt, 'debs'));
  const root = path.join(OSTREE_SID_CACHE, 'root');
  fs.rmSync(root, { recursive: true, force: true });
  for (const deb of fs.readdirSync(path.join(apt, 'debs')).filter((name) => name.endsWith('.deb'))) {
    sh('dpkg-deb', ['-x', path.join(apt, 'debs', deb), root]);
  }
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
