// The boot sequence on the host, both layouts, with the real loader, validator and mount; only the digest
// source (no TPM here: a test source that counts the PCR caps) and the verity mode (no fs-verity here: off,
// so the tree can be read back; verity=require is proven in QEMU and by `sealroot boot` below) are swapped in.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, defaultBootSteps, type BootResult, type BootSteps } from '../../src/boot.ts';
import type { CapEvent } from '../../src/trust/boot-read.ts';
import type { TrustedCandidate } from '../../src/boot/trust-source.ts';
import { createLogger } from '../../src/log.ts';
import { StepError } from '../../src/errors.ts';
import { mountComposefs } from '../../src/mount/composefs.ts';
import { MNT_DETACH, umount2 } from '../../src/sys/mountapi.ts';
import { digestsEqual, parseDigest, type Digest } from '../../src/verity/digest.ts';
import {
  fsverityDigest, leftoversSince, listTree, makeComposefsFixture, privateScratch, releaseScratch, snapshot, writeTree, type Fixture, type TreeSpec,
} from '../helpers/composefs-fixture.ts';
import { check, requireRoot, requireTools, ROOT, run, run as runCommand } from '../helpers/tools.ts';
import { isDisposableInitramfs, removeTreeOnDevice } from '../../src/boot/free-initramfs.ts';
import { sceneDirs, type Scene } from '../helpers/boot-scene.ts';
import { imageMemfds } from '../helpers/image-load.ts';

requireRoot();
requireTools('unshare', 'busybox', 'fsverity');
if (!fs.existsSync('/bin/busybox') || !fs.existsSync('/usr/bin/python3')) throw new Error('missing /bin/busybox (busybox-static) or /usr/bin/python3 (python3-gi): scripts/setup installs them');
const log = createLogger({ kmsg: false, verbose: false });
const work = privateScratch('sealroot-boot-');

/** The OS tree in the image: /etc and /var empty mount points, /usr/etc the image's default /etc. */
const OS: TreeSpec = {
  'usr/bin/init': '#!/bin/sh\necho hello from the new root\n',
  'usr/lib/os-release': 'ID=sealroot-test\n',
  'usr/lib/big.bin': Buffer.alloc(150_000, 0x42),
  'usr/etc/motd': 'default motd from the image\n',
  'usr/etc/hostname': 'image\n',
  'etc': { dir: true },
  'var': { dir: true },
  'sysroot': { dir: true },
  'run': { dir: true },
  'sbin': { symlink: 'usr/bin' },
};
const fixture: Fixture = makeComposefsFixture(path.join(work, 'fx'), OS);
const digest = parseDigest(fixture.digest);
const hex = digest.bytes.toString('hex');

function scene(name: string, cmdline: (s: Omit<Scene, 'cmdline'>) => string, configExtra = ''): Scene {
  const base = sceneDirs(path.join(work, name));
  fs.writeFileSync(base.config, `[root]\nsysroot = "${base.sysroot}"\n${configExtra}`);
  return { ...base, cmdline: cmdline(base) };
}

const DEPLOY = 'ostree/deploy/testos/deploy/0123abcd.0';
const BOOTLINK = '/ostree/boot.1/testos/feedface/0';

function ostreeScene(name: string, prepareRootConf = '[composefs]\nenabled = yes\n'): Scene {
  const s = scene(name, () => `rw ostree=${BOOTLINK} quiet`);
  writeTree(s.sysroot, {
    [`${DEPLOY}/etc/hostname`]: 'deployment\n',
    [`${DEPLOY}/etc/passwd`]: 'root:x:0:0::/root:/bin/sh\n',
    'ostree/deploy/testos/var/lib/state': 'persistent\n',
    'ostree/repo/config': '[core]\nmode=bare\n',
    [BOOTLINK.slice(1)]: { symlink: '../../../deploy/testos/deploy/0123abcd.0' },
  });
  fs.copyFileSync(fixture.image, path.join(s.sysroot, DEPLOY, '.ostree.cfs'));
  fs.cpSync(fixture.objects, path.join(s.sysroot, 'ostree/repo/objects'), { recursive: true });
  writeTree(s.initramfs, { 'usr/lib/ostree/prepare-root.conf': prepareRootConf });
  return s;
}

function composefsScene(name: string, setupRootConf?: string, cmdlineDigest = hex): Scene {
  const s = scene(name, () => `quiet composefs=${cmdlineDigest}`);
  writeTree(s.sysroot, {
    [`state/deploy/${hex}/etc/hostname`]: 'state\n',
    [`state/deploy/${hex}/var/log/boot.log`]: 'old log\n',
  });
  fs.mkdirSync(path.join(s.sysroot, 'composefs/images'), { recursive: true });
  fs.copyFileSync(fixture.image, path.join(s.sysroot, 'composefs/images', hex));
  fs.cpSync(fixture.objects, path.join(s.sysroot, 'composefs/objects'), { recursive: true });
  if (setupRootConf !== undefined) writeTree(s.initramfs, { 'usr/lib/composefs/setup-root-conf.toml': setupRootConf });
  return s;
}

interface Run {
  /** The PCR extends the boot asked for, in order. */
  caps: CapEvent[];
  steps: BootSteps;
}

/** The real steps except: the digest from the test (counting PCR caps) and verity=off (no fs-verity on the host). */
function testSteps(trusted: Digest | TrustedCandidate[] = digest): Run {
  const state: Run = { caps: [], steps: defaultBootSteps() };
  state.steps = {
    ...defaultBootSteps(),
    trustedImages: async () => (Array.isArray(trusted) ? trusted : [{ digest: trusted }]),
    capPcr: async (_context, event) => {
      state.caps.push(event);
    },
    mountComposefs: (options) => mountComposefs({ ...options, verity: 'off' }),
  };
  return state;
}

async function bootScene(s: Scene, steps: BootSteps, extra: { switchRoot?: boolean } = {}): Promise<BootResult> {
  return boot({ configPath: s.config, cmdline: s.cmdline, runDir: s.run, initramfsRoot: s.initramfs, makeRootPrivate: false, log, ...extra }, steps);
}

/** The whole tree except /etc, /var and /sysroot (mounted over from the state and the physical root). */
function listImageTree(root: string): string[] {
  return listTree(root).filter((line) => !/^\S (etc|var|sysroot)(\/| )/.test(line));
}

function listUnder(root: string, sub: string): string[] {
  return listTree(path.join(root, sub));
}

function mountOf(target: string): string {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((line) => line.split(' ')[4] === target).at(-1) ?? '';
}

function unmountAll(s: Scene): void {
  // Detaching the new root takes its submounts (/etc, /var, /sysroot) with it.
  umount2(s.sysroot, MNT_DETACH);
}

/** /run/ostree-booted parsed by GLib (python3-gi), in normal form, as JSON. */
function readOstreeBooted(file: string): unknown {
  const result = runCommand('/usr/bin/python3', ['-c', `import sys, json
from gi.repository import GLib
data = open(sys.argv[1], 'rb').read()
v = GLib.Variant.new_from_bytes(GLib.VariantType.new('a{sv}'), GLib.Bytes.new(data), False)
assert v.is_normal_form(), 'not in normal form'
print(json.dumps(v.unpack()))`, file]);
  assert.is(result.status, 0, result.stderr);
  return JSON.parse(result.stdout);
}

function assertRoIsEnforced(dir: string): void {
  assert.throws(() => fs.writeFileSync(path.join(dir, 'probe'), 'x'), (e: unknown) => (e as NodeJS.ErrnoException).code === 'EROFS', dir);
}

test('ostree: the deployment image at /sysroot, /etc from the deployment, /var from the stateroot, physical root ro at /sysroot/sysroot', async () => {
  const s = ostreeScene('ostree-default');
  const before = snapshot(work);
  const run = testSteps();
  const result = await bootScene(s, run.steps);
  try {
    assert.is(result.plan.layout, 'ostree');
    assert.is(result.plan.deployment, path.join(s.sysroot, DEPLOY));
    assert.equal(run.caps, ['digest-read']);
    assert.match(mountOf(s.sysroot), / - overlay composefs ro,lowerdir\+=/);
    assert.equal(listImageTree(s.sysroot), listImageTree(fixture.source));
    assert.ok(listImageTree(s.sysroot).length > 10);
    assert.is(fs.readlinkSync(path.join(s.sysroot, 'sbin')), 'usr/bin');
    // /etc: the deployment's, writable, writes land in the deployment.
    assert.equal(fs.readdirSync(path.join(s.sysroot, 'etc')).sort(), ['hostname', 'passwd']);
    fs.writeFileSync(path.join(s.sysroot, 'etc/new.conf'), 'x');
    // /var: the stateroot's, writable.
    assert.is(fs.readFileSync(path.join(s.sysroot, 'var/lib/state'), 'utf8'), 'persistent\n');
    fs.writeFileSync(path.join(s.sysroot, 'var/lib/new'), 'y');
    // The physical root, read-only.
    assert.ok(fs.existsSync(path.join(s.sysroot, 'sysroot', DEPLOY, '.ostree.cfs')));
    assert.match(mountOf(path.join(s.sysroot, 'sysroot')), /^\S+ \S+ \S+ \S+ \S+ ro[, ]/);
    assertRoIsEnforced(path.join(s.sysroot, 'sysroot'));
    assertRoIsEnforced(s.sysroot);
    // /run/ostree-booted as GLib reads it: libostree finds the booted deployment by its device and inode.
    const deployStat = fs.statSync(path.join(s.sysroot, 'sysroot', DEPLOY), { bigint: true });
    const booted = readOstreeBooted(path.join(s.run, 'ostree-booted'));
    assert.equal(booted, {
      'backing-root-device-inode': [Number(deployStat.dev), Number(deployStat.ino)],
      'root.transient': false, 'root.transient-ro': false, composefs: true, 'composefs.verity': false, 'sysroot-ro': true,
    });
    assert.equal(fs.readdirSync(path.join(s.run, 'sealroot')), [], 'staging and temporary mount points removed');
  } finally {
    unmountAll(s);
  }
  assert.equal(leftoversSince(before), []);
  assert.ok(fs.existsSync(path.join(s.sysroot, DEPLOY, 'etc/new.conf')), 'the /etc write is in the deployment');
  assert.ok(fs.existsSync(path.join(s.sysroot, 'ostree/deploy/testos/var/lib/new')), 'the /var write is in the stateroot');
});

test('ostree: etc.transient (usr/etc on tmpfs), root.transient (writable root), sysroot.readonly=false', async () => {
  const s = ostreeScene('ostree-transient', '[composefs]\nenabled = yes\n[etc]\ntransient = true\n[root]\ntransient = true\n[sysroot]\nreadonly = false\n');
  const before = snapshot(work);
  const run = testSteps();
  await bootScene(s, run.steps);
  try {
    assert.equal(fs.readdirSync(path.join(s.sysroot, 'etc')).sort(), ['hostname', 'motd']);
    assert.is(fs.readFileSync(path.join(s.sysroot, 'etc/hostname'), 'utf8'), 'image\n');
    fs.writeFileSync(path.join(s.sysroot, 'etc/transient'), 'gone at reboot');
    assert.ok(fs.existsSync(path.join(s.run, 'sealroot/transient/etc/upper/transient')));
    fs.writeFileSync(path.join(s.sysroot, 'usr/new-in-root'), 'root is transient');
    assert.ok(fs.existsSync(path.join(s.run, 'sealroot/transient/root/upper/usr/new-in-root')));
    fs.writeFileSync(path.join(s.sysroot, 'sysroot/writable'), 'ok');
    assert.match(mountOf(s.sysroot), / - overlay composefs rw,lowerdir\+=.*upperdir=/);
    const booted = readOstreeBooted(path.join(s.run, 'ostree-booted')) as Record<string, unknown>;
    assert.is(booted['root.transient'], true);
    assert.is(booted['sysroot-ro'], false);
    assert.is(booted['transient-etc'], path.join(s.run, 'sealroot/transient/etc'));
  } finally {
    unmountAll(s);
  }
  assert.equal(leftoversSince(before), []);
  assert.is(fs.readFileSync(path.join(s.sysroot, 'writable'), 'utf8'), 'ok');
  assert.not.ok(fs.existsSync(path.join(s.sysroot, DEPLOY, 'etc/transient')));
});

const MODES = ['bind', 'overlay', 'transient', 'none'] as const;
for (const etcMode of MODES) {
  const varMode = MODES[(MODES.indexOf(etcMode) + 1) % MODES.length]!;
  test(`composefs-rs: [etc] mount=${etcMode}, [var] mount=${varMode}`, async () => {
    const s = composefsScene(`cfs-${etcMode}`, `[etc]\nmount = "${etcMode}"\n[var]\nmount = "${varMode}"\n`);
    // While mounted, the physical root is visible only through the read-only bind in the new root.
    const state = path.join(s.sysroot, 'sysroot/state/deploy', hex);
    const before = snapshot(work);
    const run = testSteps();
    const result = await bootScene(s, run.steps);
    try {
      assert.is(result.plan.layout, 'composefs');
      assert.equal(run.caps, ['digest-read']);
      assert.equal(listImageTree(s.sysroot), listImageTree(fixture.source));
      assertRoIsEnforced(path.join(s.sysroot, 'sysroot'));
      assert.ok(fs.existsSync(path.join(s.sysroot, 'sysroot/composefs/images', hex)));
      // bind shows the state directory; overlay and transient show the image's (empty) directory plus writes.
      const expectEtc = { bind: ['hostname'], overlay: [], transient: [], none: [] }[etcMode];
      assert.equal(fs.readdirSync(path.join(s.sysroot, 'etc')).filter((n) => !['upper', 'work'].includes(n)).sort(), expectEtc);
      const expectVar = { bind: ['log'], overlay: [], transient: [], none: [] }[varMode];
      assert.equal(fs.readdirSync(path.join(s.sysroot, 'var')).filter((n) => !['upper', 'work'].includes(n)).sort(), expectVar);
      for (const [dir, mode] of [['etc', etcMode], ['var', varMode]] as const) {
        if (mode === 'none') {
          assertRoIsEnforced(path.join(s.sysroot, dir));
          continue;
        }
        fs.writeFileSync(path.join(s.sysroot, dir, 'written'), mode);
        const landed = {
          bind: path.join(state, dir, 'written'),
          overlay: path.join(state, dir, 'upper/written'),
          transient: path.join(s.run, 'sealroot/transient', dir, 'upper/written'),
        }[mode];
        assert.is(fs.readFileSync(landed, 'utf8'), mode, `${dir} (${mode}) write lands in ${landed}`);
      }
    } finally {
      unmountAll(s);
    }
    assert.equal(leftoversSince(before), []);
    assert.not.ok(fs.existsSync(path.join(s.run, 'ostree-booted')));
  });
}

test('composefs-rs: defaults without a config file (etc overlay, var bind) and a SHA-512-free 64-hex karg', async () => {
  const s = composefsScene('cfs-defaults');
  const run = testSteps();
  const before = snapshot(work);
  const result = await bootScene(s, run.steps);
  try {
    assert.equal(result.plan.etc, { kind: 'overlay', state: path.join(s.sysroot, 'state/deploy', hex, 'etc') });
    assert.equal(result.plan.var, { kind: 'bind', source: path.join(s.sysroot, 'state/deploy', hex, 'var') });
    assert.match(mountOf(path.join(s.sysroot, 'etc')), / - overlay overlay rw,lowerdir=/);
  } finally {
    unmountAll(s);
  }
  assert.equal(leftoversSince(before), []);
});

test('a symlink on the physical root cannot bind a directory of the initramfs: state var -> / stays inside the sysroot', async () => {
  const s = composefsScene('symlink-escape', '[etc]\nmount = "none"\n[var]\nmount = "bind"\n');
  const varDir = path.join(s.sysroot, 'state/deploy', hex, 'var');
  fs.rmSync(varDir, { recursive: true });
  fs.symlinkSync('/', varDir);
  const before = snapshot(work);
  const result = await bootScene(s, testSteps().steps);
  try {
    assert.equal(result.plan.var, { kind: 'bind', source: s.sysroot });
    assert.ok(fs.existsSync(path.join(s.sysroot, 'var/composefs/images')), '/var shows the physical root');
    assert.not.ok(fs.existsSync(path.join(s.sysroot, 'var/proc')), '/var is not the host root');
  } finally {
    unmountAll(s);
  }
  assert.equal(leftoversSince(before), []);
});

test('composefs-rs with a SHA-512 image (composefs=<128 hex>, as bootc makes them)', async () => {
  const fx512 = makeComposefsFixture(path.join(work, 'fx512'), OS, { hashAlg: 'sha512' });
  const digest512 = parseDigest(fx512.digest);
  assert.is(digest512.algorithm, 'sha512');
  const hex512 = digest512.bytes.toString('hex');
  const s = scene('cfs-sha512', () => `composefs=${hex512}`);
  writeTree(s.sysroot, { [`state/deploy/${hex512}/etc/hostname`]: 'state\n', [`state/deploy/${hex512}/var/.keep`]: '' });
  fs.mkdirSync(path.join(s.sysroot, 'composefs/images'), { recursive: true });
  fs.copyFileSync(fx512.image, path.join(s.sysroot, 'composefs/images', hex512));
  fs.cpSync(fx512.objects, path.join(s.sysroot, 'composefs/objects'), { recursive: true });
  const before = snapshot(work);
  const result = await bootScene(s, testSteps(digest512).steps);
  try {
    assert.is(result.digest.algorithm, 'sha512');
    assert.equal(listUnder(s.sysroot, 'usr'), listUnder(fx512.source, 'usr'));
  } finally {
    unmountAll(s);
  }
  assert.equal(leftoversSince(before), []);
});

/** Runs a boot that must fail at `step`; checks the one line, that nothing is left, and that the PCR was capped. */
async function failsAt(s: Scene, stepName: string, pattern: RegExp, run = testSteps(), extra: { switchRoot?: boolean } = {}): Promise<void> {
  const before = snapshot(work);
  let caught: unknown;
  try {
    await bootScene(s, run.steps, extra);
  } catch (error) {
    caught = error;
  }
  assert.instance(caught, StepError, `expected a StepError at ${stepName}`);
  const error = caught as StepError;
  assert.is(error.step, stepName, error.message);
  assert.match(error.message, pattern);
  assert.not.match(error.message, /\n/);
  assert.equal(leftoversSince(before), [], `leftovers after the ${stepName} failure`);
  assert.equal(run.caps, ['digest-read', 'boot-failed'], 'capped on the failure path too, then the approvals voided');
  // Every directory the boot made under RUN goes, RUN/sealroot itself too (issue 12 point 5).
  assert.not.ok(fs.existsSync(path.join(s.run, 'sealroot')), 'RUN/sealroot removed');
  assert.not.ok(fs.existsSync(path.join(s.run, 'ostree-booted')));
}

test('failure: missing image (ostree and composefs-rs)', async () => {
  const o = ostreeScene('fail-missing-image-ostree');
  fs.rmSync(path.join(o.sysroot, DEPLOY, '.ostree.cfs'));
  await failsAt(o, 'verify-image', /the image does not exist \(resolved inside the physical root\).*\.ostree\.cfs.*ENOENT/);
  const c = composefsScene('fail-missing-image-cfs');
  fs.rmSync(path.join(c.sysroot, 'composefs/images', hex));
  await failsAt(c, 'verify-image', /ENOENT/);
});

test('failure: wrong trusted digest, and an image that changed on disk', async () => {
  await failsAt(ostreeScene('fail-wrong-digest'), 'verify-image', /digest mismatch/, testSteps(parseDigest('1'.repeat(64))));
  const s = ostreeScene('fail-tampered-image');
  const image = path.join(s.sysroot, DEPLOY, '.ostree.cfs');
  const bytes = fs.readFileSync(image);
  bytes[2000] ^= 0x01;
  fs.writeFileSync(image, bytes);
  await failsAt(s, 'verify-image', /digest mismatch/);
});

test('failure: an image that matches the trusted digest but is not valid EROFS is refused before the kernel sees it', async () => {
  const s = ostreeScene('fail-invalid-erofs');
  const image = path.join(s.sysroot, DEPLOY, '.ostree.cfs');
  const bytes = fs.readFileSync(image);
  bytes.writeUInt32LE(0, 1024); // the EROFS superblock magic
  fs.writeFileSync(image, bytes);
  await failsAt(s, 'validate-image', /magic|superblock/i, testSteps(parseDigest(fsverityDigest(image))));
});

test('validation once, when trust is granted: an image of the signed set is not validated again unless validate-image = "always"; an unsigned digest always is', async () => {
  const size = fs.statSync(fixture.image).size;
  const signed = [{ digest, version: 4, size }];
  const skipped = testSteps(signed);
  let validated = 0;
  skipped.steps.validateImage = (image) => {
    validated++;
    return defaultBootSteps().validateImage(image);
  };
  const s = composefsScene('validate-signed');
  const result = await bootScene(s, skipped.steps);
  unmountAll(s);
  assert.is(validated, 0, 'a signed image was validated at boot');
  assert.ok(result.timings.every((timing) => timing.step !== 'validate-image'));
  // The same image with an unsigned digest (no version: the development karg) is validated.
  const unsigned = testSteps();
  unsigned.steps.validateImage = skipped.steps.validateImage;
  const u = composefsScene('validate-unsigned');
  await bootScene(u, unsigned.steps);
  unmountAll(u);
  assert.is(validated, 1);
  // validate-image = "always": a signed image whose bytes are not valid EROFS is refused before the kernel sees it.
  const broken = path.join(work, 'broken-signed.cfs');
  const bytes = fs.readFileSync(fixture.image);
  bytes.writeUInt32LE(0, 1024); // the EROFS superblock magic
  fs.writeFileSync(broken, bytes);
  const hexOf = (file: string) => fsverityDigest(file).slice('sha256:'.length);
  const always = scene('validate-always', () => `quiet composefs=${hexOf(broken)}`, 'validate-image = "always"\n');
  fs.mkdirSync(path.join(always.sysroot, 'composefs/images'), { recursive: true });
  fs.copyFileSync(broken, path.join(always.sysroot, 'composefs/images', hexOf(broken)));
  fs.cpSync(path.join(fixture.objects), path.join(always.sysroot, 'composefs/objects'), { recursive: true });
  for (const sub of ['etc', 'var']) fs.mkdirSync(path.join(always.sysroot, 'state/deploy', hexOf(broken), sub), { recursive: true });
  await failsAt(always, 'validate-image', /magic|superblock/i, testSteps([{ digest: parseDigest(fsverityDigest(broken)), version: 5, size }]));
});

test('failure: composefs= names a digest that is not in the trusted set', async () => {
  const other = '2'.repeat(64);
  const s = composefsScene('fail-named-digest', undefined, other);
  fs.mkdirSync(path.join(s.sysroot, 'state/deploy', other), { recursive: true });
  const set = testSteps([{ digest, version: 3, size: 4096 }, { digest: parseDigest('5'.repeat(64)), version: 2, size: 4096 }]);
  await failsAt(s, 'trusted-image', new RegExp(`composefs= names sha256:${other}, which is not in the trusted set \\(version 3 sha256:${hex}, version 2 sha256:5{64}\\)`), set);
  assert.equal(set.caps, ['digest-read', 'boot-failed']);
});

test('a trusted set: ostree boots the member its image matches and logs the version; the copy is bounded by the signed sizes', async () => {
  const size = fs.statSync(fixture.image).size;
  const members = [{ digest: parseDigest('6'.repeat(64)), version: 7, size }, { digest, version: 6, size }];
  const lines: string[] = [];
  const s = ostreeScene('ostree-set');
  const result = await boot({
    configPath: s.config, cmdline: s.cmdline, runDir: s.run, initramfsRoot: s.initramfs, makeRootPrivate: false,
    log: { ...log, notice: (line: string) => lines.push(line) },
  }, testSteps(members).steps);
  try {
    assert.is(result.version, 6);
    assert.ok(lines.some((line) => line.includes(`(trusted version 6) verified`)), lines.join('\n'));
  } finally {
    unmountAll(s);
  }
  // Every member signed smaller than the image: refused before the copy, with the bound named.
  const small = members.map((member) => ({ ...member, size: 4096 }));
  await failsAt(ostreeScene('ostree-set-small'), 'copy-image', /4096/, testSteps(small));
});

/** testSteps whose TPM answers only once the copy has returned, and which records the order of the two. */
function tpmWaitsForCopy(trusted: TrustedCandidate[], tpmError?: StepError): Run & { order: string[] } {
  const run = testSteps(trusted);
  const order: string[] = [];
  let copied: () => void = () => undefined;
  const copyDone = new Promise<void>((resolve) => {
    copied = resolve;
  });
  const copyImage = run.steps.copyImage;
  run.steps.copyImage = async (options) => {
    order.push('copy started');
    try {
      return await copyImage(options);
    } finally {
      order.push('copy returned');
      copied();
    }
  };
  run.steps.trustedImages = async () => {
    order.push('tpm asked');
    // composefs= names the digest: the copy must complete while the TPM is still answering (or this never resolves).
    await Promise.race([copyDone, new Promise((resolve) => setTimeout(resolve, 10_000))]);
    order.push('tpm answered');
    if (tpmError !== undefined) throw tpmError;
    return trusted;
  };
  return { ...run, order };
}

test('composefs= names the digest: the copy runs while the TPM answers; membership and the signed size are checked after it, before anything is mounted', async () => {
  const size = fs.statSync(fixture.image).size;
  const before = imageMemfds();
  const ok = tpmWaitsForCopy([{ digest, version: 4, size }]);
  const s = composefsScene('early-copy');
  const result = await bootScene(s, ok.steps);
  try {
    assert.equal(ok.order, ['tpm asked', 'copy started', 'copy returned', 'tpm answered']);
    assert.is(result.version, 4);
    assert.ok(digestsEqual(result.digest, digest));
  } finally {
    unmountAll(s);
  }
  // Signed for another size: refused at copy-image after the TPM's answer, the copy closed.
  const resized = tpmWaitsForCopy([{ digest, version: 4, size: size - 4096 }]);
  await failsAt(composefsScene('early-copy-size'), 'copy-image', new RegExp(`^copy-image: .*the image is ${size} bytes, the trusted image is ${size - 4096}`), resized);
  assert.equal(resized.order, ['tpm asked', 'copy started', 'copy returned', 'tpm answered']);
  // Not in the set, or the TPM failing: the finished copy is abandoned.
  const other = tpmWaitsForCopy([{ digest: parseDigest('7'.repeat(64)), version: 5, size }]);
  await failsAt(composefsScene('early-copy-retired'), 'trusted-image', /which is not in the trusted set/, other);
  const failing = tpmWaitsForCopy([{ digest, version: 4, size }], new StepError('tpm', 'no read approval matches'));
  await failsAt(composefsScene('early-copy-tpm'), 'tpm', /no read approval matches/, failing);
  assert.equal(failing.order, ['tpm asked', 'copy started', 'copy returned', 'tpm answered']);
  assert.is(imageMemfds(), before, 'no image memfd left open');
  // The TPM refusing while the copy is still under way: the copy is stopped, the failure not held up by it (a copy
  // that ends only when stopped would hold the boot forever otherwise).
  const stalled = testSteps([{ digest, version: 4, size }]);
  let copySignal: AbortSignal | undefined;
  stalled.steps.copyImage = (options) => new Promise((_, reject) => {
    copySignal = options.signal;
    options.signal?.addEventListener('abort', () => reject(options.signal!.reason), { once: true });
  });
  stalled.steps.trustedImages = async () => {
    throw new StepError('tpm', 'no read approval matches');
  };
  await failsAt(composefsScene('early-copy-stopped'), 'tpm', /no read approval matches/, stalled);
  assert.ok(copySignal?.aborted, 'the copy was stopped');
  // ostree names a deployment, not a digest: the copy waits for the set.
  const ostree = testSteps([{ digest, version: 4, size }]);
  const order: string[] = [];
  const copyImage = ostree.steps.copyImage;
  ostree.steps.trustedImages = async () => {
    order.push('tpm answered');
    return [{ digest, version: 4, size }];
  };
  ostree.steps.copyImage = async (options) => {
    order.push('copy started');
    return copyImage(options);
  };
  const o = ostreeScene('late-copy-ostree');
  await bootScene(o, ostree.steps);
  unmountAll(o);
  assert.equal(order, ['tpm answered', 'copy started']);
});

test('root.image: the image is a file of the initramfs, objects and state on the physical root; nothing holds it after the boot', async () => {
  const embedded = '/usr/lib/sealroot/root.cfs';
  const s = composefsScene('embedded-image');
  fs.appendFileSync(s.config, `image = "${embedded}"\n`);
  // The physical root's own image is gone: only the initramfs's can be booted.
  fs.rmSync(path.join(s.sysroot, 'composefs/images', hex));
  writeTree(s.initramfs, { [embedded.slice(1)]: fs.readFileSync(fixture.image) });
  const lines: string[] = [];
  const result = await boot({
    configPath: s.config, cmdline: s.cmdline, runDir: s.run, initramfsRoot: s.initramfs, makeRootPrivate: false,
    log: { ...log, notice: (line: string) => lines.push(line) },
  }, testSteps().steps);
  try {
    assert.equal(result.digest, digest);
    assert.ok(lines.includes(`locate-root: the image is the initramfs's ${path.join(s.initramfs, embedded)} (root.image), not ${path.join(s.sysroot, 'composefs/images', hex)}`), lines.join('\n'));
    assert.equal(listUnder(s.sysroot, 'usr/lib'), listUnder(fixture.source, 'usr/lib'));
    const holders = fs.readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return fs.readlinkSync(`/proc/self/fd/${fd}`) === path.join(s.initramfs, embedded);
      } catch {
        return false;
      }
    });
    assert.equal(holders, [], 'no fd of this process holds the initramfs\'s image');
  } finally {
    unmountAll(s);
  }
  // Trust as usual: the initramfs's image must be the trusted one.
  const wrong = composefsScene('embedded-image-wrong');
  fs.appendFileSync(wrong.config, `image = "${embedded}"\n`);
  const bytes = fs.readFileSync(fixture.image);
  bytes[bytes.length - 100] ^= 0x01;
  writeTree(wrong.initramfs, { [embedded.slice(1)]: bytes });
  await failsAt(wrong, 'verify-image', /digest mismatch/);
  // A path that leads onto the physical root is not an image of the initramfs.
  const escape = composefsScene('embedded-image-escape');
  fs.appendFileSync(escape.config, `image = "/../sysroot/composefs/images/${hex}"\n`);
  await failsAt(escape, 'locate-root', /root\.image names \/\.\.\/sysroot\/composefs\/images\/[0-9a-f]+, on the physical root .*: it must be a file of the initramfs/);
});

test('failure: missing objects directory', async () => {
  const s = ostreeScene('fail-no-objects');
  fs.rmSync(path.join(s.sysroot, 'ostree/repo/objects'), { recursive: true });
  await failsAt(s, 'mount-composefs', /objects directory .*ostree\/repo\/objects.*ENOENT/);
});

test('failure: bad configuration files', async () => {
  const s = ostreeScene('fail-bad-config');
  fs.writeFileSync(s.config, '[tpm]\npcr = "sha256:7"\n');
  await failsAt(s, 'config', /unknown key tpm\.pcr/);
  fs.writeFileSync(s.config, '[digest]\nsource = "cmdline"\n');
  await failsAt(s, 'config', /allow-unauthenticated-cmdline/);
  fs.rmSync(s.config);
  await failsAt(s, 'config', /ENOENT/);
  const p = ostreeScene('fail-prepare-root-conf', '[composefs]\nenabled = no\n');
  await failsAt(p, 'locate-root', /composefs is disabled/);
  const c = composefsScene('fail-setup-root-conf', '[etc]\nmount = "tmpfs"\n');
  await failsAt(c, 'locate-root', /etc\.mount must be one of/);
});

test('failure: bad kargs', async () => {
  const cases: [string, RegExp][] = [
    ['ostree=/ostree/boot.1/testos/feedface/9', /does not exist/],
    [`ostree=/${DEPLOY}`, /is not a symbolic link/],
    ['composefs=xyz', /not a digest/],
    [`composefs=?${hex}`, /fs-verity optional/],
    [`ostree=${BOOTLINK} composefs=${hex}`, /both ostree= and composefs=/],
    ['rw quiet', /neither ostree= nor composefs=/],
    [`composefs=${hex} composefs=${'3'.repeat(64)}`, /more than once/],
  ];
  for (const [cmdline, pattern] of cases) {
    const s = ostreeScene(`fail-karg-${cases.findIndex(([c]) => c === cmdline)}`);
    await failsAt({ ...s, cmdline }, 'locate-root', pattern);
  }
});

test('failure after the composefs mount (state missing for a bind) unwinds every mount made so far', async () => {
  const s = composefsScene('fail-late', '[etc]\nmount = "transient"\n[var]\nmount = "bind"\n');
  fs.rmSync(path.join(s.sysroot, 'state/deploy', hex, 'var'), { recursive: true });
  await failsAt(s, 'prepare-root', /\/var: .*\/var does not exist/);
  const o = ostreeScene('fail-no-init');
  await failsAt({ ...o, cmdline: `${o.cmdline} init=/sbin/missing-init` }, 'prepare-root', /init \/sbin\/missing-init not found in the new root/, testSteps(), { switchRoot: true });
});

test('failure of the digest source: still capped, nothing mounted', async () => {
  const run = testSteps();
  run.steps.trustedImages = async () => {
    throw new StepError('tpm', 'no TPM');
  };
  await failsAt(ostreeScene('fail-tpm'), 'tpm', /no TPM/, run);
});

test('a failed PCR cap fails the boot; when the read and the cap both fail, the read is the reported step', async () => {
  const capFails = testSteps();
  capFails.steps.capPcr = async (_context, event) => {
    capFails.caps.push(event);
    throw new StepError('tpm', 'cap refused');
  };
  await failsAt(ostreeScene('fail-cap'), 'tpm', /cap refused/, capFails);
  const lines: string[] = [];
  const both = testSteps();
  both.steps.trustedImages = async () => {
    throw new StepError('tpm', 'no TPM here');
  };
  both.steps.capPcr = async (_context, event) => {
    both.caps.push(event);
    throw new StepError('tpm', 'cannot cap either');
  };
  const s = ostreeScene('fail-both');
  const caught = await boot({
    configPath: s.config, cmdline: s.cmdline, runDir: s.run, initramfsRoot: s.initramfs, makeRootPrivate: false,
    log: { ...log, error: (line: string) => lines.push(line) },
  }, both.steps).then(() => undefined, (error: unknown) => error);
  assert.instance(caught, StepError);
  assert.match((caught as StepError).message, /no TPM here/);
  assert.equal(both.caps, ['digest-read', 'boot-failed']);
  assert.equal(lines.filter((line) => /also: tpm: cannot cap either/.test(line)).length, 2, lines.join('\n'));
});

test('sealroot boot (CLI) in a private mount namespace: verity=require root from a cmdline digest the config allows, without loading node:crypto; refused without the allow key', () => {
  const s = composefsScene('cli', '[etc]\nmount = "bind"\n');
  const node = path.join(ROOT, 'node_modules/.bin/node');
  const main = path.join(ROOT, 'src/cli/main.ts');
  // The builtins the boot loaded, written by an 'exit' listener (the CLI ends through exit_group after those run).
  const builtinsFile = path.join(s.dir, 'builtins.json');
  const recorder = `data:text/javascript,${encodeURIComponent(`import { writeFileSync } from "node:fs";
process.on("exit", () => writeFileSync(${JSON.stringify(builtinsFile)}, JSON.stringify(process.moduleLoadList.filter((name) => name.startsWith("NativeModule ")).map((name) => name.slice(13)))));`)}`;
  const script = (config: string) => `set -e
mount -t tmpfs tmpfs /run
${node} --import '${recorder}' ${main} boot --config ${config} --cmdline "composefs=${hex} sealroot.digest=${fixture.digest}"
echo "@@ $(awk '$5 == "${s.sysroot}"' /proc/self/mountinfo | tail -1)"
echo "@@ ls $(ls ${s.sysroot}/usr/bin)"
`;
  fs.writeFileSync(path.join(s.dir, 'allowed.toml'), `[digest]\nsource = "cmdline"\nallow-unauthenticated-cmdline = true\n[root]\nsysroot = "${s.sysroot}"\n`);
  const ok = run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script(path.join(s.dir, 'allowed.toml'))], { env: { ...process.env, SEALROOT_KMSG: '0' } });
  assert.is(ok.status, 0, ok.stderr);
  assert.match(ok.stderr, /UNAUTHENTICATED trusted digest from the kernel command line/);
  assert.match(ok.stdout, /@@ .* - overlay composefs ro,lowerdir\+=.*verity=require/);
  assert.match(ok.stdout, /@@ ls init/);
  assert.match(ok.stdout, new RegExp(`${s.sysroot}: composefs root ready`));
  // The image's digest computed and compared (issue 15: node:crypto costs ~90 ms of a boot under QEMU TCG).
  const builtins = JSON.parse(fs.readFileSync(builtinsFile, 'utf8')) as string[];
  assert.ok(builtins.includes('fs'), builtins.join(' '));
  assert.not.ok(builtins.some((name) => name === 'crypto' || name.startsWith('internal/crypto/')), `node:crypto loaded: ${builtins.filter((name) => name.includes('crypto')).join(' ')}`);
  // On one CPU (the QEMU boot's vCPU) this thread copies and hashes the ranges itself: no node:crypto on that path
  // either (it was loaded there for each range, ~86 ms under TCG, while the other path's test passed).
  fs.rmSync(builtinsFile);
  const oneCpu = run('unshare', ['--mount', '--propagation', 'private', 'taskset', '-c', '0', 'sh', '-c', script(path.join(s.dir, 'allowed.toml'))], { env: { ...process.env, SEALROOT_KMSG: '0' } });
  assert.is(oneCpu.status, 0, oneCpu.stderr);
  assert.match(oneCpu.stderr, /ranges hashed: [1-9]\d* here, 0 by other threads/);
  const oneCpuBuiltins = JSON.parse(fs.readFileSync(builtinsFile, 'utf8')) as string[];
  assert.not.ok(oneCpuBuiltins.some((name) => name === 'crypto' || name.startsWith('internal/crypto/')), `node:crypto loaded on one CPU: ${oneCpuBuiltins.filter((name) => name.includes('crypto')).join(' ')}`);
  // The same line with a config that does not allow the karg: the TPM is tried (there is none here) and it fails.
  const refused = run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script(s.config)], { env: { ...process.env, SEALROOT_KMSG: '0' } });
  assert.is(refused.status, 1);
  assert.match(refused.stderr, /sealroot: trusted-digest: |sealroot: tpm: /);
  assert.not.match(refused.stderr, /UNAUTHENTICATED/);
  assert.not.ok(fs.existsSync(path.join(s.sysroot, 'usr')), 'nothing mounted at the sysroot outside the namespace');
});

test('freeing the initramfs after switch root: only its own files go, never what is mounted inside it', () => {
  const fake = fs.mkdtempSync(path.join(work, 'initramfs-'));
  const outside = fs.mkdtempSync(path.join(work, 'outside-'));
  fs.writeFileSync(path.join(outside, 'canary'), 'keep me');
  check('mount', ['-t', 'tmpfs', 'tmpfs', fake]);
  try {
    writeTree(fake, { 'usr/bin/sealroot': 'x'.repeat(10000), 'lib/modules/a.ko': 'ko', 'init': '#!/bin/sh\n', 'sysroot': { dir: true }, 'run': { dir: true } });
    assert.not.ok(isDisposableInitramfs(fake), 'no /etc/initrd-release: not an initramfs');
    writeTree(fake, { 'etc/initrd-release': 'NAME=test\n' });
    assert.ok(isDisposableInitramfs(fake));
    assert.not.ok(isDisposableInitramfs(ROOT), 'a disk filesystem never is');
    check('mount', ['--bind', outside, path.join(fake, 'sysroot')]);
    check('mount', ['-t', 'tmpfs', 'tmpfs', path.join(fake, 'run')]);
    fs.writeFileSync(path.join(fake, 'run/canary'), 'keep me too');
    const removed = removeTreeOnDevice(fake, fs.statSync(fake).dev);
    assert.is(removed, 9); // usr/bin/sealroot, usr/bin, usr, lib/modules/a.ko, lib/modules, lib, init, etc/initrd-release, etc
    assert.equal(fs.readdirSync(fake).sort(), ['run', 'sysroot']);
    assert.is(fs.readFileSync(path.join(fake, 'sysroot/canary'), 'utf8'), 'keep me');
    assert.is(fs.readFileSync(path.join(fake, 'run/canary'), 'utf8'), 'keep me too');
  } finally {
    umount2(fake, MNT_DETACH); // with the mounts inside it
  }
  assert.is(fs.readFileSync(path.join(outside, 'canary'), 'utf8'), 'keep me');
});

test('as PID 1 with --switch-root: the new root becomes /, /proc /dev /run move into it, init= runs with the args after --; a failure starts the emergency shell', () => {
  const dir = path.join(work, 'pid1');
  const init = '#!/usr/bin/busybox sh\n'
    + 'echo "@@ init $0 args: $*"\n'
    + 'echo "@@ pid $$"\n'
    + 'echo "@@ hostname $(/usr/bin/busybox cat /etc/hostname)"\n'
    + 'echo "@@ root $(/usr/bin/busybox awk \'$5 == "/" { print $8, $9 }\' /proc/self/mountinfo | /usr/bin/busybox tail -n 1)"\n'
    + 'echo "@@ sysroot $(/usr/bin/busybox ls /sysroot/composefs/images)"\n'
    + 'echo "@@ run $(/usr/bin/busybox awk \'$5 == "/run" { print $8 }\' /proc/self/mountinfo)"\n';
  const pidFixture = makeComposefsFixture(path.join(dir, 'fx'), {
    ...OS,
    'usr/bin/busybox': { file: fs.readFileSync('/bin/busybox'), mode: 0o755 },
    'usr/sbin/test-init': { file: init, mode: 0o755 },
    'proc': { dir: true }, 'dev': { dir: true }, 'sys': { dir: true },
  });
  const pidHex = parseDigest(pidFixture.digest).bytes.toString('hex');
  const s = scene('pid1-scene', () => '', '[digest]\nsource = "tpm"\n');
  writeTree(s.sysroot, { [`state/deploy/${pidHex}/etc/hostname`]: 'pid1-state\n', [`state/deploy/${pidHex}/var/.keep`]: '' });
  fs.mkdirSync(path.join(s.sysroot, 'composefs/images'), { recursive: true });
  fs.copyFileSync(pidFixture.image, path.join(s.sysroot, 'composefs/images', pidHex));
  fs.cpSync(pidFixture.objects, path.join(s.sysroot, 'composefs/objects'), { recursive: true });
  writeTree(s.initramfs, { 'usr/lib/composefs/setup-root-conf.toml': '[etc]\nmount = "bind"\n' });
  const node = path.join(ROOT, 'node_modules/.bin/node');
  const runner = path.join(ROOT, 'test/helpers/boot-pid1.ts');
  const asPid1 = (cmdline: string) => run('unshare', ['--pid', '--fork', '--mount', '--propagation', 'private', '--mount-proc', 'sh', '-c',
    `mount -t tmpfs tmpfs /run && exec ${node} ${runner}`], {
    env: { ...process.env, SEALROOT_KMSG: '0', SEALROOT_PID1_TEST: JSON.stringify({ config: s.config, cmdline, initramfs: s.initramfs, digest: pidFixture.digest }) },
    input: 'echo "@@ emergency shell pid $$"\nexit 0\n',
  });

  const ok = asPid1(`composefs=${pidHex} init=/usr/sbin/test-init -- first "second arg"`);
  assert.match(ok.stdout, /@@ init \/usr\/sbin\/test-init args: first second arg/, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /@@ pid 1\n/);
  assert.match(ok.stdout, /@@ hostname pid1-state/);
  assert.match(ok.stdout, /@@ root overlay composefs/);
  assert.match(ok.stdout, new RegExp(`@@ sysroot ${pidHex}\n`));
  assert.match(ok.stdout, /@@ run tmpfs/);
  assert.not.match(ok.stdout, /emergency/);

  const failed = asPid1(`composefs=${'4'.repeat(64)} init=/usr/sbin/test-init`);
  assert.match(failed.stderr, /sealroot: locate-root: no deployment state directory/);
  assert.match(failed.stderr, /starting the emergency shell \/bin\/sh/);
  assert.match(failed.stdout, /@@ emergency shell pid 1\n/);
  assert.not.match(failed.stdout, /@@ init/);

  // The CLI as PID 1 without --switch-root would exit (a kernel panic): it goes to the emergency shell instead.
  const main = path.join(ROOT, 'src/cli/main.ts');
  const noSwitch = run('unshare', ['--pid', '--fork', '--mount', '--propagation', 'private', '--mount-proc', node, main, 'boot', '--config', s.config], {
    env: { ...process.env, SEALROOT_KMSG: '0' }, input: 'echo "@@ emergency shell pid $$"\nexit 0\n',
  });
  assert.match(noSwitch.stderr, /as PID 1, sealroot boot needs --switch-root/);
  assert.match(noSwitch.stdout, /@@ emergency shell pid 1\n/);
});

test.after(() => {
  releaseScratch(work);
});

test.run();
