// Debian sid packages on this bookworm machine, for reference tools the tests compare with (mkcomposefs, ostree):
// downloaded from the Debian mirror this machine's apt already uses, through a private apt directory under .cache/
// (the system's apt configuration is never touched and no registry's host name is written into the project),
// unpacked with dpkg-deb, run through the fetched dynamic loader. Versions are resolved at fetch time; a failed
// fetch throws: the callers fail, they never skip.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export function sh(command: string, args: string[], cwd?: string): string {
  const result = spawnSync(command, args, { encoding: 'utf8', cwd, maxBuffer: 1 << 26 });
  if (result.error !== undefined) throw result.error;
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.status}: ${result.stderr.trim()}`);
  return result.stdout;
}

/** The Debian mirror this machine's apt uses (read from its configuration, never written into the project). */
export function debianMirror(): string {
  const sources = '/etc/apt/sources.list.d/debian.sources';
  if (fs.existsSync(sources)) {
    const uri = /^URIs:\s*(\S+)/m.exec(fs.readFileSync(sources, 'utf8'));
    if (uri !== null) return uri[1]!;
  }
  const list = fs.existsSync('/etc/apt/sources.list') ? /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)/m.exec(fs.readFileSync('/etc/apt/sources.list', 'utf8')) : null;
  if (list === null) throw new Error('cannot find the Debian mirror this machine uses');
  return list[1]!;
}

/**
 * Downloads sid's `wanted` packages into CACHE/apt/debs and unpacks them into CACHE/root (returned). With
 * `closure`, their whole dependency closure as apt would install it on an empty system (Depends and Pre-Depends,
 * one alternative of each `a | b`); otherwise exactly the packages named.
 */
export function fetchSidPackages(cache: string, wanted: readonly string[], closure: boolean): string {
  const apt = path.join(cache, 'apt');
  fs.rmSync(path.join(apt, 'debs'), { recursive: true, force: true });
  for (const dir of ['lists/partial', 'cache/archives/partial', 'debs']) fs.mkdirSync(path.join(apt, dir), { recursive: true });
  fs.writeFileSync(path.join(apt, 'sources.list'), `deb ${debianMirror()} sid main\n`);
  // An empty dpkg status: the closure is computed as for an empty system (bookworm's installed versions are too old).
  fs.writeFileSync(path.join(apt, 'status'), '');
  const options = [
    '-o', `Dir::Etc::SourceList=${path.join(apt, 'sources.list')}`, '-o', 'Dir::Etc::SourceParts=/dev/null',
    '-o', `Dir::State::Lists=${path.join(apt, 'lists')}`, '-o', `Dir::Cache=${path.join(apt, 'cache')}`,
    '-o', `Dir::State::Status=${path.join(apt, 'status')}`, '-o', 'APT::Sandbox::User=root',
    '-o', 'APT::Architecture=amd64', '-o', 'APT::Architectures=amd64',
  ];
  sh('apt-get', [...options, 'update']);
  let packages = [...wanted];
  if (closure) {
    // "Inst <name> (<version> ...": the plan apt makes from sid's lists at this moment.
    const plan = sh('apt-get', [...options, '-s', 'install', '--no-install-recommends', ...wanted]);
    packages = [...plan.matchAll(/^Inst (\S+) /gm)].map((match) => match[1]!);
    for (const name of wanted) if (!packages.includes(name)) throw new Error(`${name} is not in sid's lists (apt-get -s install: ${plan.slice(-300)})`);
  }
  sh('apt-get', [...options, 'download', ...packages], path.join(apt, 'debs'));
  const root = path.join(cache, 'root');
  fs.rmSync(root, { recursive: true, force: true });
  for (const deb of fs.readdirSync(path.join(apt, 'debs')).filter((name) => name.endsWith('.deb'))) {
    sh('dpkg-deb', ['-x', path.join(apt, 'debs', deb), root]);
  }
  return root;
}
