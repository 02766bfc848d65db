// Issue 13: the ostree scenarios boot deployments made by the real ostree CLI (Debian sid's ostree 2026.x and
// libcomposefs 1.0.8, run on this bookworm host through sid's own loader: test/helpers/ostree-sid.ts).
// Each disk is an ext4 image (with the verity feature) loop-mounted on the host, because `ostree admin deploy`
// freezes the file system that holds /boot; on it: `ostree admin init-fs` (plain: dracut's shell flow wants proc,
// sys and dev), `admin os-init`, `[ex-integrity] composefs=true` in the repo config, `commit --bootable` of the sample
// root (with `composefs.enabled = verity` or `yes` in its /usr/lib/ostree/prepare-root.conf) and `admin deploy`.
// The kernel arguments are the `options` line of ostree's own BLS entry. The host kernel has no fs-verity: one
// "prepare" boot enables it on the repo's objects and on .ostree.cfs (as ostree would on a verity file system);
// the digest-less disk's objects are left without it, as they were when ostree deployed them.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ostreeSid } from '../../test/helpers/ostree-sid.ts';
import { fsverityDigest, writeSampleTree, HELLO } from './disk.ts';
import { BOOT_CONFIG, buildGuestInitramfs, PCR_SELECTION, pcrExtendArgs } from './guest.ts';
import { BUSYBOX, buildInitramfs, moduleLoadOrder } from './initramfs.ts';
import { CACHE, freshDir, pruneCache, ROOT, sealrootBinary, type Kernel } from './paths.ts';
import { POLICY_KEY_PRIVATE, POLICY_KEY_PUBLIC, stateDisk, type TpmState } from './provision.ts';
import { judge, sealrootMessages, type Scenario, type Verdict } from './scenarios.ts';
import { startGuestSwtpm, startTcpSwtpm } from './swtpm.ts';
import { boot, type BootResult } from './vm.ts';

export type OstreeCase = 'deploy' | 'rollback' | 'digestless';
const CASES: readonly OstreeCase[] = ['deploy', 'rollback', 'digestless'];
const STATEROOT = 'sample';

export interface OstreeEntry {
  /** The BLS entry's file name and its `options` line (the kernel arguments ostree gave this deployment). */
  entry: string;
  options: string;
  /** The deployment's version.txt, printed by the root's init as "@@ VERSION <n>". */
  version: string;
  /** fs-verity digest (sha256:<hex>) and size of its .ostree.cfs, the image that boots. */
  digest: string;
  size: number;
  /** A copy of that .ostree.cfs on the host, for the key holder's `trust sign --image` / `provision --image`. */
  image: string;
}

export interface OstreeDisk {
  file: string;
  entries: OstreeEntry[];
}

export interface OstreeDisks {
  disks: Record<OstreeCase, OstreeDisk>;
  /** e.g. "ostree 2026.4-1, libostree-1-1 2026.4-1, libcomposefs1 1.0.8-3". */
  versions: string;
  /** `ostree --version` as the fetched binary prints it. */
  ostreeVersion: string;
  /** Every ostree command that made the disks, in order. */
  commands: string[];
}

function fingerprint(versions: string): string {
  const hash = createHash('sha256').update(versions);
  for (const file of [BUSYBOX, path.join(ROOT, 'qemu/guest/root-init'), path.join(ROOT, 'qemu/guest/prepare-init'), import.meta.filename, path.join(ROOT, 'qemu/lib/disk.ts')]) {
    const stat = fs.statSync(file);
    hash.update(`${file}:${stat.size}:${stat.mtimeMs}`);
  }
  return hash.digest('hex').slice(0, 16);
}

/** One disk: a loop-mounted ext4 deployed by the ostree CLI, one deployment per tree version (the last is the default). */
function makeDisk(work: string, name: OstreeCase, composefs: 'verity' | 'yes', versions: string[], commands: string[]): OstreeDisk {
  const sid = ostreeSid();
  const ostree = (args: string[]): string => {
    commands.push(`ostree ${args.join(' ')}`);
    return execFileSync(sid.ostree[0]!, [...sid.ostree.slice(1), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  };
  const file = path.join(work, `ostree-${name}.img`);
  const mnt = path.join(work, `mnt-${name}`);
  fs.mkdirSync(mnt);
  execFileSync('mkfs.ext4', ['-q', '-F', '-b', '4096', '-O', 'verity', '-L', 'sealroot-ostree', file, '128M']);
  execFileSync('mount', ['-o', 'loop', file, mnt]);
  try {
    const repo = `--repo=${mnt}/ostree/repo`;
    ostree(['admin', 'init-fs', mnt]);
    ostree(['admin', 'os-init', STATEROOT, `--sysroot=${mnt}`]);
    ostree([repo, 'config', 'set', 'ex-integrity.composefs', 'true']);
    const digests = new Map<string, { digest: string; size: number; image: string }>();
    for (const version of versions) {
      const tree = path.join(work, `tree-${name}-${version}`);
      writeSampleTree(tree, HELLO);
      fs.writeFileSync(path.join(tree, 'usr/share/sealroot-test/version.txt'), `${version}\n`);
      // An ostree commit carries the default /etc as /usr/etc (admin deploy merges it into the deployment's /etc).
      fs.renameSync(path.join(tree, 'etc'), path.join(tree, 'usr/etc'));
      fs.mkdirSync(path.join(tree, 'usr/lib/ostree'), { recursive: true });
      fs.writeFileSync(path.join(tree, 'usr/lib/ostree/prepare-root.conf'), `[composefs]\nenabled = ${composefs}\n`);
      // commit --bootable wants a kernel in the tree; QEMU boots its own (-kernel) and the test initramfs, so stand-ins
      // are enough. Without an initramfs ostree would make its own prepare-root init= (the static, initramfs-less boot).
      fs.mkdirSync(path.join(tree, 'usr/lib/modules/6.12.0-sealroot-test'), { recursive: true });
      fs.writeFileSync(path.join(tree, 'usr/lib/modules/6.12.0-sealroot-test/vmlinuz'), Buffer.alloc(4096, 0x4b));
      fs.writeFileSync(path.join(tree, 'usr/lib/modules/6.12.0-sealroot-test/initramfs.img'), Buffer.alloc(4096, 0x49));
      const commit = ostree([repo, 'commit', `--branch=${STATEROOT}/x86_64`, '--bootable', `--tree=dir=${tree}`, `--subject=version ${version}`]).trim();
      ostree(['admin', 'deploy', `--sysroot=${mnt}`, `--os=${STATEROOT}`, `${STATEROOT}/x86_64`]);
      const image = path.join(mnt, 'ostree/deploy', STATEROOT, 'deploy', `${commit}.0`, '.ostree.cfs');
      const copy = path.join(work, `ostree-${name}-${version}.cfs`);
      fs.copyFileSync(image, copy);
      digests.set(version, { digest: fsverityDigest(image), size: fs.statSync(image).size, image: copy });
    }
    const entriesDir = path.join(mnt, 'boot/loader/entries');
    const entries: OstreeEntry[] = fs.readdirSync(entriesDir).filter((entry) => entry.endsWith('.conf')).sort().map((entry) => {
      const text = fs.readFileSync(path.join(entriesDir, entry), 'utf8');
      const options = /^options (.*)$/m.exec(text)?.[1];
      if (options === undefined) throw new Error(`${entry}: no options line`);
      const target = /(?:^| )ostree=(\S+)/.exec(options)?.[1];
      if (target === undefined) throw new Error(`${entry}: no ostree= in ${options}`);
      // Booted through the test initramfs, whose sealroot replaces ostree-prepare-root: an init= of ostree's own
      // (its initramfs-less boot) would mean the entry is not the ordinary one.
      if (/(?:^| )init=/.test(options)) throw new Error(`${entry}: ostree wrote init= (${options}): no initramfs in the tree?`);
      const deployment = fs.realpathSync(path.join(mnt, target));
      const version = fs.readFileSync(path.join(deployment, 'usr/share/sealroot-test/version.txt'), 'utf8').trim();
      const image = path.join(deployment, '.ostree.cfs');
      if (fsverityDigest(image) !== digests.get(version)?.digest) throw new Error(`${entry}: its .ostree.cfs is not the one deployed for version ${version}`);
      return { entry, options, version, ...digests.get(version)! };
    });
    if (entries.length !== versions.length) throw new Error(`${name}: ${entries.length} boot entries for ${versions.length} deployments`);
    // What the prepare boot enables fs-verity on (qemu/guest/prepare-init): the objects unless the disk shows a
    // deployment made without it, and every .ostree.cfs.
    const images = fs.readdirSync(path.join(mnt, 'ostree/deploy', STATEROOT, 'deploy')).filter((dir) => !dir.endsWith('.origin'))
      .map((dir) => path.join('ostree/deploy', STATEROOT, 'deploy', dir, '.ostree.cfs'));
    fs.writeFileSync(path.join(mnt, '.sealroot-test-prepare'), `${[...(composefs === 'verity' ? ['ostree/repo/objects'] : []), ...images].join('\n')}\n`);
    return { file, entries };
  } finally {
    execFileSync('umount', [mnt]);
  }
}

/** Builds the three ostree disks (cached until ostree, the sample root or this harness changes). */
export async function buildOstreeDisks(kernel: Kernel, log: (line: string) => void): Promise<OstreeDisks> {
  const sid = ostreeSid();
  const key = fingerprint(sid.versions);
  const dir = path.join(CACHE, 'ostree-disks', key);
  const manifest = path.join(dir, 'ostree-disks.json');
  if (fs.existsSync(manifest)) return JSON.parse(fs.readFileSync(manifest, 'utf8')) as OstreeDisks;
  pruneCache(path.join(CACHE, 'ostree-disks'), (name) => name === key);
  const work = freshDir(`${dir}.work`);
  const ostreeVersion = execFileSync(sid.ostree[0]!, [...sid.ostree.slice(1), '--version'], { encoding: 'utf8' }).match(/Version: '([^']+)'/)?.[1] ?? 'unknown';
  const commands: string[] = [];
  const disks = {
    deploy: makeDisk(work, 'deploy', 'verity', ['1'], commands),
    rollback: makeDisk(work, 'rollback', 'verity', ['1', '2'], commands),
    digestless: makeDisk(work, 'digestless', 'yes', ['1'], commands),
  };
  const initrd = buildInitramfs({
    name: 'prepare-ostree',
    kernel,
    binaries: [{ source: execFileSync('sh', ['-c', 'command -v fsverity'], { encoding: 'utf8' }).trim(), target: 'usr/bin/fsverity' }],
    modules: moduleLoadOrder(kernel, ['virtio_blk']),
    files: { 'etc/disk-count': { content: `${CASES.length}\n` } },
    init: fs.readFileSync(path.join(ROOT, 'qemu/guest/prepare-init'), 'utf8'),
    compress: ['zstd', '-q', '-3'],
  });
  const result = await boot({ kernel, initrd, drives: CASES.map((name) => ({ file: disks[name].file })), append: 'quiet', timeoutSeconds: 120 });
  const prepared = result.lines.filter((line) => line.startsWith('@@ PREPARED '));
  if (prepared.length !== CASES.length || !result.lines.includes('@@ END')) {
    throw new Error(`the ostree prepare boot did not prepare every disk:\n${result.lines.filter((line) => line.startsWith('@@') || /error|fail/i.test(line)).join('\n')}`);
  }
  for (const line of prepared) log(`ostree disks: ${line.slice(3)}`);
  fs.mkdirSync(dir, { recursive: true });
  for (const name of CASES) {
    const target = path.join(dir, path.basename(disks[name].file));
    fs.renameSync(disks[name].file, target);
    disks[name].file = target;
    for (const entry of disks[name].entries) {
      const image = path.join(dir, path.basename(entry.image));
      if (!fs.existsSync(image)) fs.renameSync(entry.image, image);
      entry.image = image;
    }
  }
  const final: OstreeDisks = { disks, versions: sid.versions, ostreeVersion, commands };
  fs.writeFileSync(manifest, JSON.stringify(final, null, 2));
  fs.rmSync(work, { recursive: true, force: true });
  return final;
}

function sealroot(args: string[]): { status: number | null; output: string } {
  const result = spawnSync(sealrootBinary(), args, { encoding: 'utf8' });
  return { status: result.status, output: `${result.stdout ?? ''}${result.stderr ?? ''}`.trim() };
}

function sealrootOk(args: string[]): string {
  const { status, output } = sealroot(args);
  if (status !== 0) throw new Error(`sealroot ${args[0]} ${args[1] ?? ''} exited ${status}: ${output.split('\n').at(-1)}`);
  return output;
}

export interface OstreeProvisioned {
  state: TpmState;
  /** ostree-digestless: what `sealroot trust sign --image` said when the key holder tried to sign the image. */
  signRefusal?: string;
}

/**
 * The machine's TPM for one disk, in the trusted PCR state: the trusted set holds every deployment's .ostree.cfs
 * digest, signed as the README says (the digest of the image that boots, checked with --image): the first through
 * `sealroot provision --image` (first install, version 1), each further one through an update the key holder signed
 * (`sealroot trust sign --image`) applied with `sealroot trust apply`, as an ostree system would after `admin deploy`.
 * The digest-less image cannot be signed that way (its validation fails with the line the boot would print): the
 * scenario's key holder tries, then signs it by size only, and its machine validates every boot
 * ([root] validate-image = "always"), so that the boot meets the image too.
 */
async function provisionOstree(disk: OstreeDisk, name: OstreeCase, log: (line: string) => void): Promise<OstreeProvisioned> {
  const key = createHash('sha256').update(`${disk.entries.map((entry) => entry.digest).join(',')}:${path.basename(sealrootBinary())}:${PCR_SELECTION}`).digest('hex').slice(0, 16);
  const dir = path.join(CACHE, 'ostree-provision', `${name}-${key}`);
  const state: TpmState = { swtpm: path.join(dir, 'swtpm'), sealroot: path.join(dir, 'sealroot') };
  const done = path.join(dir, 'done.json');
  if (fs.existsSync(done)) return JSON.parse(fs.readFileSync(done, 'utf8')) as OstreeProvisioned;
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(state.sealroot, { recursive: true });
  const provisioned: OstreeProvisioned = { state };
  // Oldest deployment first: versions in deployment order.
  const ordered = [...disk.entries].sort((a, b) => Number(a.version) - Number(b.version));
  const imageArgs = (entry: OstreeEntry): string[] => ['--image', entry.image];
  if (name === 'digestless') {
    const attempt = sealroot(['trust', 'sign', '--signing-key', POLICY_KEY_PRIVATE, '--policy-key', POLICY_KEY_PUBLIC, '--digest', ordered[0]!.digest,
      '--image', ordered[0]!.image, '--version', ordered[0]!.version, '--out', path.join(dir, 'refused.trust')]);
    if (attempt.status === 0) throw new Error('sealroot trust sign --image signed the digest-less image');
    provisioned.signRefusal = attempt.output.split('\n').at(-1)!;
    log(`ostree ${name}: trust sign --image refused: ${provisioned.signRefusal}`);
  }
  const swtpm = await startTcpSwtpm(state.swtpm);
  try {
    const tcti = swtpm.tcti!;
    execFileSync('tpm2_pcrextend', ['-T', tcti, ...pcrExtendArgs('trusted')], { stdio: ['ignore', 'ignore', 'pipe'] });
    const [first, ...later] = ordered;
    const firstImage = name === 'digestless' ? ['--size', String(first!.size)] : imageArgs(first!);
    log(`ostree ${name}: ${sealrootOk(['provision', '--tpm', tcti, '--digest', first!.digest, ...firstImage, '--version', first!.version,
      '--pcrs', PCR_SELECTION, '--state', state.sealroot, '--policy-key', POLICY_KEY_PUBLIC, '--signing-key', POLICY_KEY_PRIVATE]).split('\n').at(-1)}`);
    for (const entry of later) {
      const update = path.join(dir, `update-${entry.version}.trust`);
      sealrootOk(['trust', 'sign', '--signing-key', POLICY_KEY_PRIVATE, '--policy-key', POLICY_KEY_PUBLIC, '--digest', entry.digest, ...imageArgs(entry),
        '--version', entry.version, '--out', update]);
      log(`ostree ${name}: ${sealrootOk(['trust', 'apply', '--tpm', tcti, '--policy-key', POLICY_KEY_PUBLIC, update]).split('\n').at(-1)}`);
    }
  } finally {
    await swtpm.stop();
  }
  fs.writeFileSync(done, JSON.stringify(provisioned, null, 2));
  return provisioned;
}

/** The boot configuration of the digest-less scenario's machine: every boot validates the image. */
export const VALIDATE_ALWAYS_CONFIG = `${BOOT_CONFIG}\n[root]\nvalidate-image = "always"\n`;

export interface OstreeSetup {
  kernel: Kernel;
  busybox: string;
  ostree: OstreeDisks;
  /** md5 of the sample root's victim.bin (the same bytes in every deployment). */
  victimMd5: string;
}

const ROOT_READY = /^sealroot: root ready at \S+: ostree image (sha256:[0-9a-f]{64}) .*verified/;

/** Boots every BLS entry of the scenario's disk (rollback: both), each judged like any scenario plus its deployment. */
export async function runOstreeScenario(setup: OstreeSetup, scenario: Scenario, dir: string, log: (line: string) => void): Promise<{ verdict: Verdict; result: BootResult; console: string }> {
  const name = scenario.ostree!;
  const disk = setup.ostree.disks[name];
  const { state, signRefusal } = await provisionOstree(disk, name, log);
  if (name === 'digestless' && !/validate-image: .*no fs-verity digest .*composefs\.enabled = verity/.test(signRefusal ?? '')) {
    throw new Error(`trust sign --image did not refuse the digest-less image with the validator's line: ${signRefusal}`);
  }
  const initrd = name === 'digestless' ? buildGuestInitramfs(setup.kernel, { name: 'guest-validate-always', bootConfig: VALIDATE_ALWAYS_CONFIG }) : setup.busybox;
  const made = `${setup.ostree.versions} (ostree --version: ${setup.ostree.ostreeVersion})`;
  const reasons: string[] = [];
  let last: { result: BootResult; console: string } | undefined;
  for (const entry of disk.entries) {
    fs.cpSync(state.swtpm, path.join(dir, `swtpm-${entry.version}`), { recursive: true });
    const swtpm = await startGuestSwtpm(path.join(dir, `swtpm-${entry.version}`));
    let result: BootResult;
    try {
      result = await boot({
        kernel: setup.kernel,
        initrd,
        drives: [{ file: disk.file, snapshot: true }, { file: stateDisk(state.sealroot, path.join(dir, `state-${entry.version}.img`)), snapshot: false }],
        // ostree's own BLS options, then the harness's.
        append: `loglevel=5 ${entry.options} test.scenario=${scenario.name} test.pcr=trusted test.precap=0`,
        tpmSocket: swtpm.socket,
        timeoutSeconds: 120,
      });
    } finally {
      await swtpm.stop();
    }
    const console = path.join(dir, `console-${entry.entry}.log`);
    fs.writeFileSync(console, result.console);
    last = { result, console };
    const what = `${entry.entry} (options "${entry.options}", version ${entry.version}, ${entry.digest})`;
    const verdict = judge(scenario, result.lines, result.timedOut, setup.victimMd5);
    if (!verdict.pass) return { verdict: { pass: false, reason: `${what}: ${verdict.reason}` }, ...last };
    const messages = sealrootMessages(result.lines);
    if (scenario.expect.kind === 'boot') {
      const ready = messages.map((line) => ROOT_READY.exec(line)?.[1]).find((digest) => digest !== undefined);
      if (ready !== entry.digest) return { verdict: { pass: false, reason: `${what}: sealroot verified ${ready ?? 'nothing'}, not this entry's .ostree.cfs` }, ...last };
      if (!result.lines.includes(`@@ VERSION ${entry.version}`)) {
        return { verdict: { pass: false, reason: `${what}: booted ${result.lines.find((line) => line.startsWith('@@ VERSION ')) ?? 'no VERSION line'}` }, ...last };
      }
      // /run as ostree-prepare-root leaves it (plus the marker for ostree-system-generator), seen by the booted root.
      const run = result.lines.find((line) => line.startsWith('@@ OSTREE-RUN '));
      const parsed = run === undefined ? undefined : /^@@ OSTREE-RUN \.private initramfs-mount-var volatile-root=\/dev\/block\/(\d+:\d+) vda=(\d+:\d+) var=1 stateroot-var=1$/.exec(run);
      if (parsed === undefined || parsed === null || parsed[1] !== parsed[2]) {
        return { verdict: { pass: false, reason: `${what}: /run after the boot: ${run ?? 'no OSTREE-RUN line'}` }, ...last };
      }
    } else if (messages.some((line) => line.startsWith('sealroot: root ready'))) {
      return { verdict: { pass: false, reason: `${what}: sealroot said "root ready"` }, ...last };
    }
    const run = result.lines.find((line) => line.startsWith('@@ OSTREE-RUN '));
    reasons.push(`${what}: ${verdict.reason}${run === undefined ? '' : `; ${run.slice(3)}`}`);
  }
  const signed = signRefusal === undefined ? '' : `; the key holder's trust sign --image refused it first: ${signRefusal}`;
  return { verdict: { pass: true, reason: `${reasons.join('; ')}${signed}; deployments made by ${made}` }, ...last! };
}

let building: Promise<OstreeDisks> | undefined;
/** The ostree disks, built once per run however many scenarios ask at the same time. */
export function ostreeDisks(kernel: Kernel, log: (line: string) => void): Promise<OstreeDisks> {
  building ??= buildOstreeDisks(kernel, log).then((disks) => {
    log(`ostree disks: ${disks.versions}; ostree --version ${disks.ostreeVersion}; made by: ${disks.commands.join(' && ')}`);
    return disks;
  });
  return building;
}
