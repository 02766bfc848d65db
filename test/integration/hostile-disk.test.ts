// hostile-disk (issue 12): the attacker writes the whole disk. For every path the layouts take from it (the image,
// the objects, the state directory, /etc and /var sources, the approvals, the ostree deployment symlinks), a hostile
// variant: a symlink out of the physical root, a FIFO, a character device, a huge sparse file, a file that grows,
// a directory where a file belongs (and the reverse). Each boot runs in its own mount namespace under a timeout
// (test/helpers/boot-hostile.ts) with the real layouts, loader, mounts and PCR cap (swtpm on loopback), and must:
// fail with one line naming the step and the reason, leave no mount and no loop device, leave no RUN/sealroot,
// and leave the cap PCR in the failed state (the cap, then the boot-failed event). sealroot reads no boot loader
// entries (the kernel command line carries ostree=/composefs=), so there is no BLS case.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Tpm } from '../../src/tpm2/client.ts';
import { parsePcrSelection } from '../../src/tpm2/pcr-selection.ts';
import { BOOT_FAILED_EVENT, CAP_EVENT, capEventDigest } from '../../src/tpm2/approved-policy.ts';
import { parseDigest } from '../../src/verity/digest.ts';
import { leftoversSince, makeComposefsFixture, privateScratch, releaseScratch, snapshot, writeTree, type TreeSpec } from '../helpers/composefs-fixture.ts';
import { startSwtpm, type Swtpm } from '../helpers/swtpm.ts';
import { requireRoot, requireTools, ROOT } from '../helpers/tools.ts';
import { sceneDirs, type Scene } from '../helpers/boot-scene.ts';

requireRoot();
requireTools('unshare', 'swtpm', 'mknod', 'mkfifo', 'fsverity');
const hostile = suite('hostile-disk');
const work = privateScratch('sealroot-hostile-');
const CAP = 15;
const TIMEOUT_MS = 60_000;

const OS: TreeSpec = {
  'usr/bin/init': '#!/bin/sh\n', 'usr/etc/hostname': 'image\n', 'usr/lib/big.bin': Buffer.alloc(20_000, 0x42),
  'etc': { dir: true }, 'var': { dir: true }, 'sysroot': { dir: true },
};
const fixture = makeComposefsFixture(path.join(work, 'fx'), OS);
const hex = parseDigest(fixture.digest).bytes.toString('hex');
/** Outside the physical root: what an escaping symlink would reach. */
const OUTSIDE = path.join(work, 'outside');
writeTree(OUTSIDE, { 'marker': 'OUTSIDE THE DISK\n', 'approvals.json': '{}', 'var/marker': 'outside var\n', 'objects/.keep': '' });
fs.copyFileSync(fixture.image, path.join(OUTSIDE, 'image.cfs'));
const DEPLOY = 'ostree/deploy/os/deploy/0123.0';
const BOOTLINK = 'ostree/boot.1/os/feed/0';

let tpm: Swtpm;
hostile.before(async () => {
  tpm = await startSwtpm();
});
hostile.after(async () => {
  await tpm.stop();
  releaseScratch(work);
});

let count = 0;
function scene(layout: 'composefs' | 'ostree', setupRootConf = '[etc]\nmount = "bind"\n[var]\nmount = "bind"\n', extraRoot = ''): Scene {
  const s: Scene = { ...sceneDirs(path.join(work, `case-${++count}`)), cmdline: layout === 'ostree' ? `ostree=/${BOOTLINK}` : `composefs=${hex}` };
  fs.writeFileSync(s.config, `[tpm]\ntcti = "${tpm.tcti}"\npcrs = "sha256:7"\ncap-pcr = ${CAP}\nstate = "${s.sysroot}/sealroot/tpm"\n`
    + `policy-key = "${ROOT}/keys/test-policy-key.pub.pem"\n[root]\nsysroot = "${s.sysroot}"\n${extraRoot}`);
  writeTree(s.sysroot, { 'sealroot/tpm/approvals.json': '{"format":"sealroot-tpm-approvals/1","approvals":[]}\n', 'tmp/.keep': '' });
  if (layout === 'composefs') {
    writeTree(s.sysroot, { [`state/deploy/${hex}/etc/hostname`]: 'state\n', [`state/deploy/${hex}/var/log/boot.log`]: 'log\n' });
    fs.mkdirSync(path.join(s.sysroot, 'composefs/images'), { recursive: true });
    fs.copyFileSync(fixture.image, path.join(s.sysroot, 'composefs/images', hex));
    fs.cpSync(fixture.objects, path.join(s.sysroot, 'composefs/objects'), { recursive: true });
    writeTree(s.initramfs, { 'usr/lib/composefs/setup-root-conf.toml': setupRootConf });
  } else {
    writeTree(s.sysroot, {
      [`${DEPLOY}/etc/hostname`]: 'deployment\n', 'ostree/deploy/os/var/lib/state': 'persistent\n',
      [BOOTLINK]: { symlink: '../../../deploy/os/deploy/0123.0' },
    });
    fs.copyFileSync(fixture.image, path.join(s.sysroot, DEPLOY, '.ostree.cfs'));
    fs.cpSync(fixture.objects, path.join(s.sysroot, 'ostree/repo/objects'), { recursive: true });
    writeTree(s.initramfs, { 'usr/lib/ostree/prepare-root.conf': '[composefs]\nenabled = yes\n' });
  }
  return s;
}

/** Replaces `rel` on the physical root by something hostile. */
function make(s: Scene, rel: string, what: { fifo: true } | { chardev: true } | { symlink: string } | { dir: true } | { file: string } | { sparse: number }): void {
  const file = path.join(s.sysroot, rel);
  fs.rmSync(file, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(file), { recursive: true });
  if ('fifo' in what) assert.is(spawnSync('mkfifo', [file]).status, 0);
  else if ('chardev' in what) assert.is(spawnSync('mknod', [file, 'c', '1', '5']).status, 0); // /dev/zero's numbers
  else if ('symlink' in what) fs.symlinkSync(what.symlink, file);
  else if ('dir' in what) fs.mkdirSync(file);
  else if ('file' in what) fs.writeFileSync(file, what.file);
  else {
    fs.closeSync(fs.openSync(file, 'w'));
    fs.truncateSync(file, what.sparse);
  }
}

/** A relative symlink target from `rel` (under the root) that climbs out of the root to `target` (absolute). */
function climbOut(rel: string, target: string, missingFirst = true): string {
  return `${missingFirst ? 'nx/' : ''}${'../'.repeat(rel.split('/').length + work.split('/').length + 4)}${target.slice(1)}`;
}

interface Outcome {
  status: number | null;
  line: string | undefined;
  leftovers: string[];
  stdout: string;
  stderr: string;
  millis: number;
}

function helperEnv(s: Scene, extra: Record<string, unknown>): NodeJS.ProcessEnv {
  return {
    ...process.env, SEALROOT_KMSG: '0',
    SEALROOT_HOSTILE_BOOT: JSON.stringify({ config: s.config, cmdline: s.cmdline, initramfs: s.initramfs, run: s.run, digest: fixture.digest, scene: s.dir, ...extra }),
  };
}

const NODE = path.join(ROOT, 'node_modules/.bin/node');
const HELPER = path.join(ROOT, 'test/helpers/boot-hostile.ts');

function parse(stdout: string, stderr: string, status: number | null, millis: number): Outcome {
  const line = /^@@ error (.*)$/m.exec(stdout)?.[1];
  const leftovers = JSON.parse(/^@@ leftovers (.*)$/m.exec(stdout)?.[1] ?? '["no leftovers line"]') as string[];
  return { status, line, leftovers, stdout, stderr, millis };
}

function bootIn(s: Scene, extra: Record<string, unknown> = {}): Outcome {
  const started = performance.now();
  const result = spawnSync('unshare', ['--mount', '--propagation', 'private', NODE, HELPER], { encoding: 'utf8', env: helperEnv(s, extra), timeout: TIMEOUT_MS, killSignal: 'SIGKILL' });
  const millis = performance.now() - started;
  if (result.error !== undefined) throw new Error(`the boot did not end within ${TIMEOUT_MS} ms (hang): ${result.error.message}`);
  return parse(result.stdout, result.stderr, result.status, millis);
}

function expectedFailedPcr(): string {
  let value = Buffer.alloc(32);
  for (const event of [CAP_EVENT, BOOT_FAILED_EVENT]) value = createHash('sha256').update(value).update(capEventDigest('sha256', event)).digest();
  return value.toString('hex');
}

async function capPcrValue(pcr = CAP): Promise<string> {
  const client = await Tpm.open(tpm.tcti);
  try {
    const values = await client.pcrRead(parsePcrSelection(`sha256:${pcr}`));
    return [...values.values()][0]!.toString('hex');
  } finally {
    await client.close();
  }
}

/** Boots `s` (fresh PCRs), which must fail at `step` with `reason`: one line, nothing left, PCR in the failed state. */
async function failsClosed(s: Scene, step: string | RegExp, reason: RegExp, extra: Record<string, unknown> = {}): Promise<Outcome> {
  await tpm.restart(); // PCRs reset
  fs.writeFileSync(s.config, fs.readFileSync(s.config, 'utf8').replace(/tcti = "[^"]*"/, `tcti = "${tpm.tcti}"`));
  const before = snapshot(work);
  const outcome = bootIn(s, extra);
  const context = `${outcome.stdout}${outcome.stderr}`;
  assert.is(outcome.status, 1, context);
  assert.ok(outcome.line !== undefined, `no error line: ${context}`);
  assert.ok(typeof step === 'string' ? outcome.line!.startsWith(`${step}: `) : step.test(outcome.line!), `expected step ${step}: ${outcome.line}`);
  assert.match(outcome.line!, reason);
  assert.not.match(outcome.stderr, /also: |cleanup /, 'the failure path itself failed');
  assert.equal(outcome.leftovers, [], 'mounts left in the namespace');
  assert.equal(leftoversSince(before), [], 'loop devices left');
  assert.not.ok(fs.existsSync(path.join(s.run, 'sealroot')), 'RUN/sealroot left behind');
  assert.is(await capPcrValue(), expectedFailedPcr(), 'cap PCR not in the failed state (cap, then boot-failed)');
  assert.not.match(outcome.line!, new RegExp(OUTSIDE.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + '(?!/)'), 'names a path outside the disk as its own');
  return outcome;
}

// --- the image ---
hostile('image: a FIFO, a character device, a directory: refused on the fd before any read', async () => {
  const image = `composefs/images/${hex}`;
  for (const [what, kind] of [[{ fifo: true }, 'a FIFO'], [{ chardev: true }, 'a character device'], [{ dir: true }, 'a directory']] as const) {
    const s = scene('composefs');
    make(s, image, what);
    await failsClosed(s, 'verify-image', new RegExp(`the image is ${kind}, not a regular file`));
  }
});

hostile('image: symlinks out of the root (absolute, climbing, /dev/zero) resolve inside it, where there is nothing', async () => {
  const image = `composefs/images/${hex}`;
  for (const target of [path.join(OUTSIDE, 'image.cfs'), climbOut(image, path.join(OUTSIDE, 'image.cfs'), false), '/dev/zero']) {
    const s = scene('composefs');
    make(s, image, { symlink: target });
    await failsClosed(s, 'verify-image', /the image does not exist \(resolved inside the physical root\)/);
  }
});

hostile('image: a huge sparse file is refused by its size (no copy, no OOM)', async () => {
  const s = scene('composefs');
  make(s, `composefs/images/${hex}`, { sparse: 2 ** 40 });
  // The loader's refusal (src/image/: the memory bound is issue 12 point 3's, another engineer's).
  const outcome = await failsClosed(s, /^(copy|verify)-image: /, /over the limit|larger than|too large/);
  assert.ok(outcome.millis < TIMEOUT_MS);
});

hostile('ostree .ostree.cfs: a FIFO, a symlink out of the root', async () => {
  const s = scene('ostree');
  make(s, `${DEPLOY}/.ostree.cfs`, { fifo: true });
  await failsClosed(s, 'verify-image', /the image is a FIFO/);
  const t = scene('ostree');
  make(t, `${DEPLOY}/.ostree.cfs`, { symlink: path.join(OUTSIDE, 'image.cfs') });
  await failsClosed(t, 'verify-image', /the image does not exist/);
});

// --- the objects ---
hostile('objects: a symlink out of the root, a FIFO, a file, /dev/zero: never a data layer', async () => {
  for (const [layout, rel] of [['composefs', 'composefs/objects'], ['ostree', 'ostree/repo/objects']] as const) {
    const cases: [Parameters<typeof make>[2], RegExp][] = [
      [{ symlink: path.join(OUTSIDE, 'objects') }, /objects directory does not exist/],
      [{ symlink: climbOut(rel, path.join(OUTSIDE, 'objects')) }, /objects directory does not exist/],
      [{ fifo: true }, /objects directory is not a directory/],
      [{ file: 'x' }, /objects directory is not a directory/],
      [{ symlink: '/dev/zero' }, /objects directory does not exist/],
    ];
    for (const [what, reason] of cases) {
      const s = scene(layout);
      make(s, rel, what);
      await failsClosed(s, 'mount-composefs', reason);
    }
  }
});

// --- the deployment: state directory, ostree symlink chain ---
hostile('composefs-rs state directory: a FIFO, a symlink climbing out', async () => {
  const s = scene('composefs');
  make(s, `state/deploy/${hex}`, { fifo: true });
  await failsClosed(s, 'locate-root', /no deployment state directory .*is not a directory/);
  const t = scene('composefs');
  fs.cpSync(path.join(t.sysroot, `state/deploy/${hex}`), path.join(OUTSIDE, `state-${hex}`), { recursive: true, force: true });
  make(t, `state/deploy/${hex}`, { symlink: climbOut(`state/deploy/${hex}`, path.join(OUTSIDE, `state-${hex}`)) });
  await failsClosed(t, 'locate-root', /no deployment state directory .*does not exist/);
});

hostile('ostree= symlink chain: out of the root, a loop, a FIFO instead of the link', async () => {
  const cases: [Parameters<typeof make>[2], RegExp][] = [
    [{ symlink: OUTSIDE }, /does not exist/],
    [{ symlink: climbOut(BOOTLINK, OUTSIDE) }, /does not exist/],
    [{ symlink: '0' }, /too many symbolic links/],
    [{ fifo: true }, /is not a symbolic link/],
  ];
  for (const [what, reason] of cases) {
    const s = scene('ostree');
    make(s, BOOTLINK, what);
    await failsClosed(s, 'locate-root', reason);
  }
});

// --- /etc and /var sources ---
hostile('/var and /etc binds: escaping symlinks, a FIFO, a device are refused; the issue\'s nx/../../.. case', async () => {
  const cases: ['composefs' | 'ostree', string, Parameters<typeof make>[2], string, RegExp][] = [
    ['composefs', `state/deploy/${hex}/var`, { symlink: climbOut(`state/deploy/${hex}/var`, path.join(OUTSIDE, 'var')) }, 'prepare-root', /\/var: .*does not exist/],
    ['composefs', `state/deploy/${hex}/var`, { fifo: true }, 'prepare-root', /\/var: .*is not a directory/],
    ['composefs', `state/deploy/${hex}/var`, { symlink: '/dev/zero' }, 'prepare-root', /\/var: .*does not exist/],
    ['composefs', `state/deploy/${hex}/etc`, { chardev: true }, 'prepare-root', /\/etc: .*is not a directory/],
    ['ostree', `${DEPLOY}/etc`, { symlink: climbOut(`${DEPLOY}/etc`, OUTSIDE) }, 'prepare-root', /\/etc: .*does not exist/],
    ['ostree', 'ostree/deploy/os/var', { symlink: path.join(OUTSIDE, 'var') }, 'prepare-root', /\/var|stateroot var.*does not exist/],
    ['ostree', 'ostree/deploy/os/var', { fifo: true }, 'prepare-root', /is not a directory/],
  ];
  for (const [layout, rel, what, step, reason] of cases) {
    const s = scene(layout);
    make(s, rel, what);
    await failsClosed(s, step, reason);
  }
});

hostile('/etc overlay (composefs-rs mount = "overlay"): an upper that is a symlink out of the root is refused', async () => {
  const s = scene('composefs', '[etc]\nmount = "overlay"\n[var]\nmount = "none"\n');
  make(s, `state/deploy/${hex}/etc/upper`, { symlink: OUTSIDE });
  await failsClosed(s, 'prepare-root', /etc\/upper: is not a directory \(a symlink or a file is refused\)/);
});

hostile('an absolute symlink that exists inside the root too is bound from inside (RESOLVE_IN_ROOT), never from outside', async () => {
  const s = scene('composefs', '[etc]\nmount = "none"\n[var]\nmount = "bind"\n');
  writeTree(path.join(s.sysroot, OUTSIDE.slice(1)), { 'var/marker': 'inside the disk\n' });
  make(s, `state/deploy/${hex}/var`, { symlink: path.join(OUTSIDE, 'var') });
  await tpm.restart();
  fs.writeFileSync(s.config, fs.readFileSync(s.config, 'utf8').replace(/tcti = "[^"]*"/, `tcti = "${tpm.tcti}"`));
  const script = `${NODE} ${HELPER} && cat ${s.sysroot}/var/marker`;
  const result = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { encoding: 'utf8', env: helperEnv(s, {}), timeout: TIMEOUT_MS });
  assert.is(result.status, 0, result.stdout + result.stderr);
  assert.match(result.stdout, /@@ ok/);
  assert.match(result.stdout, /^inside the disk$/m);
  assert.not.match(result.stdout, /outside var/);
});

// --- the approvals (state on the physical root) ---
hostile('approvals.json: a FIFO, /dev/zero (link and node), a huge sparse file, a directory, a link out: refused before the TPM read, capped', async () => {
  const rel = 'sealroot/tpm/approvals.json';
  const cases: [Parameters<typeof make>[2], RegExp][] = [
    [{ fifo: true }, /unusable state file: is a FIFO, not a regular file/],
    [{ symlink: '/dev/zero' }, /unusable state file: is a symbolic link/],
    [{ chardev: true }, /unusable state file: is a character device/],
    [{ sparse: 2 ** 40 }, /unusable state file: is 1099511627776 bytes, over the limit of 1048576/],
    [{ dir: true }, /unusable state file: is a directory/],
  ];
  for (const [what, reason] of cases) {
    const s = scene('composefs');
    make(s, rel, what);
    await failsClosed(s, 'tpm', reason, { realTrust: true });
  }
  // The state directory itself a link out of the root: resolved inside, where the file is missing.
  const s = scene('composefs');
  make(s, 'sealroot/tpm', { symlink: OUTSIDE });
  await failsClosed(s, 'tpm', /no approvals: the state directory was not provisioned/, { realTrust: true });
});

hostile('approvals.json on a filesystem mounted inside the physical root (an ESP) is read, still confined', async () => {
  const s = scene('composefs');
  const esp = path.join(s.sysroot, 'efi');
  fs.mkdirSync(esp);
  assert.is(spawnSync('mount', ['-t', 'tmpfs', 'tmpfs', esp]).status, 0);
  try {
    writeTree(esp, { 'sealroot/tpm/approvals.json': '{"format":"sealroot-tpm-approvals/1","approvals":[]}\n' });
    fs.writeFileSync(s.config, fs.readFileSync(s.config, 'utf8').replace(`state = "${s.sysroot}/sealroot/tpm"`, `state = "${esp}/sealroot/tpm"`));
    // The file is read (no "unusable state file", no mount-crossing refusal); the TPM then has no approval for it.
    const outcome = await failsClosed(s, 'tpm', /cannot read the trusted set/, { realTrust: true });
    assert.not.match(outcome.line!, /unusable state file|crosses a mount point|no approvals: the state directory/);
  } finally {
    spawnSync('umount', [esp]);
  }
});

hostile('approvals.json growing while it is read (a writer appends without end): refused, no hang', async () => {
  const s = scene('composefs');
  const file = path.join(s.sysroot, 'sealroot/tpm/approvals.json');
  let writer: ChildProcess | undefined;
  try {
    writer = spawn('sh', ['-c', `while :; do printf '%01000d' 0; done >> ${file}`], { stdio: 'ignore' });
    while (fs.statSync(file).size < 100_000) await new Promise((resolve) => setTimeout(resolve, 10));
    await failsClosed(s, 'tpm', /unusable state file: (grew while it was read|is \d+ bytes, over the limit)|corrupted state file: not JSON/, { realTrust: true });
  } finally {
    writer?.kill('SIGKILL');
  }
});

// --- the sealed profile ---
hostile('root.profile = "sealed" refuses a persistent /etc or /var from the disk, and boots a transient one', async () => {
  const cases: ['composefs' | 'ostree', string | undefined, RegExp][] = [
    ['composefs', '[etc]\nmount = "overlay"\n[var]\nmount = "transient"\n', /refuses a persistent, unverified \/etc .*overlay with its upper layer/],
    ['composefs', '[etc]\nmount = "transient"\n[var]\nmount = "bind"\n', /refuses a persistent, unverified \/var .*writable bind/],
    ['ostree', undefined, /refuses a persistent, unverified \/etc .*etc\] transient = true/],
  ];
  for (const [layout, conf, reason] of cases) {
    const s = scene(layout, conf, 'profile = "sealed"\n');
    await failsClosed(s, 'locate-root', reason);
  }
  const ok = scene('composefs', '[etc]\nmount = "transient"\n[var]\nmount = "transient"\n', 'profile = "sealed"\n');
  await tpm.restart();
  fs.writeFileSync(ok.config, fs.readFileSync(ok.config, 'utf8').replace(/tcti = "[^"]*"/, `tcti = "${tpm.tcti}"`));
  const outcome = bootIn(ok);
  assert.is(outcome.status, 0, outcome.stdout + outcome.stderr);
});

// --- the configuration first (issue 12 point 5) ---
hostile('an early failure (the physical root missing, before the TPM read) caps the configured PCR 14, not the default 15', async () => {
  const s = scene('composefs');
  fs.writeFileSync(s.config, fs.readFileSync(s.config, 'utf8').replace(`cap-pcr = ${CAP}`, 'cap-pcr = 14'));
  fs.rmSync(s.sysroot, { recursive: true });
  await tpm.restart();
  fs.writeFileSync(s.config, fs.readFileSync(s.config, 'utf8').replace(/tcti = "[^"]*"/, `tcti = "${tpm.tcti}"`));
  const outcome = bootIn(s);
  assert.is(outcome.status, 1, outcome.stdout + outcome.stderr);
  assert.match(outcome.line ?? '', /^physical-root: .*ENOENT.*sysroot/, outcome.stdout + outcome.stderr);
  assert.is(await capPcrValue(14), expectedFailedPcr(), 'PCR 14 (configured) in the failed state');
  assert.is(await capPcrValue(15), '0'.repeat(64), 'PCR 15 (the default) untouched');
  assert.not.ok(fs.existsSync(path.join(s.run, 'sealroot')));
});

// --- killed during the boot ---
hostile('SIGTERM, SIGINT, SIGHUP while the trusted read hangs: the failure path runs (cap, boot-failed), one line naming the signal, exit 128+n', async () => {
  for (const [signal, number] of [['SIGTERM', 15], ['SIGINT', 2], ['SIGHUP', 1]] as const) {
    const s = scene('composefs');
    await tpm.restart();
    fs.writeFileSync(s.config, fs.readFileSync(s.config, 'utf8').replace(/tcti = "[^"]*"/, `tcti = "${tpm.tcti}"`));
    const started = performance.now();
    const child = spawn('unshare', ['--mount', '--propagation', 'private', NODE, HELPER], { env: helperEnv(s, { hang: true }), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const deadline = Date.now() + TIMEOUT_MS;
    while (!stdout.includes('@@ waiting') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.ok(stdout.includes('@@ waiting'), `the boot never reached the trusted read: ${stdout}${stderr}`);
    // unshare without --fork execs the program: the pid is the boot's.
    process.kill(child.pid!, signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
    const status = await exited;
    clearTimeout(timer);
    const outcome = parse(stdout, stderr, status, performance.now() - started);
    assert.is(outcome.status, 128 + number, stdout + stderr);
    assert.is(outcome.line, `trusted-digest: interrupted by ${signal}`);
    assert.equal(outcome.leftovers, []);
    assert.is(await capPcrValue(), expectedFailedPcr());
  }
});

hostile.run();
