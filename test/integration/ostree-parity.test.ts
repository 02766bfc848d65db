// Issue 13 on the host: a deployment made by Debian sid's real ostree CLI (admin init-fs, os-init, commit --bootable,
// admin deploy with composefs) on a loop-mounted ext4 image (admin deploy freezes the file system holding /boot),
// then sid's real ostree-prepare-root (in a chroot of a private mount namespace) and sealroot's boot on the same
// deployment, compared: the mounts of the new root and the files under /run. Then sid's real ostree-system-generator
// reads each side's /run, and a digest-less deployment (composefs.enabled = yes, objects without fs-verity) is refused.
//
// The host kernel has no fs-verity: ostree-prepare-root runs with composefs.enabled = yes (no verity required at
// mount), sealroot with the overlay's verity off (its other steps are the real ones, the digest comes from the test).
// What verification adds is therefore not compared here (the QEMU tier boots these deployments with verity=require).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, defaultBootSteps, type BootSteps } from '../../src/boot.ts';
import { StepError } from '../../src/errors.ts';
import { createLogger } from '../../src/log.ts';
import { mountComposefs } from '../../src/mount/composefs.ts';
import { volatileRootTarget } from '../../src/root/ostree-run.ts';
import { MNT_DETACH, umount2 } from '../../src/sys/mountapi.ts';
import { parseDigest, type Digest } from '../../src/verity/digest.ts';
import { fsverityDigest, privateScratch, writeTree } from '../helpers/composefs-fixture.ts';
import { ostreeSid } from '../helpers/ostree-sid.ts';
import { check, requireRoot, requireTools, run } from '../helpers/tools.ts';

requireRoot();
requireTools('unshare', 'chroot', 'mkfs.ext4', 'mount', 'umount', 'truncate', 'fsverity');
if (!fs.existsSync('/usr/bin/python3')) throw new Error('missing /usr/bin/python3 (python3-gi): scripts/setup installs it');
const sid = ostreeSid();
const log = createLogger({ kmsg: false, verbose: false });
const work = privateScratch('sealroot-ostree-parity-');
const STATEROOT = 'testos';

/** The sample OS tree committed with `ostree commit --bootable` (a kernel and initramfs under usr/lib/modules). */
function sampleTree(dir: string, prepareRootConf: string, release: string): void {
  writeTree(dir, {
    'usr/bin/init': { file: '#!/bin/sh\necho hello\n', mode: 0o755 },
    'usr/lib/os-release': `ID=sealroot-test\nVERSION_ID=${release}\n`,
    'usr/lib/big.bin': Buffer.alloc(120_000, release.charCodeAt(0)),
    'usr/etc/hostname': 'image\n',
    'usr/lib/ostree/prepare-root.conf': prepareRootConf,
    'usr/lib/modules/6.1.0-test/vmlinuz': Buffer.alloc(5000, 1),
    'usr/lib/modules/6.1.0-test/initramfs.img': Buffer.alloc(3000, 2),
    ...Object.fromEntries(['sysroot', 'var', 'run', 'proc', 'dev', 'sys', 'tmp', 'boot'].map((name) => [name, { dir: true as const }])),
  });
}

interface Deployment {
  /** The physical root: a loop-mounted ext4 image. */
  sysroot: string;
  /** The `options` line of ostree's own BLS entry. */
  options: string;
  deployDir: string;
  image: string;
  digest: Digest;
  /** The commit's ostree.composefs.digest.v0 (commit --generate-composefs-metadata), as hex. */
  commitDigest: string;
  /** The commands that made it, as run (for the log). */
  commands: string[];
}

function ostree(commands: string[], args: string[]): string {
  commands.push(`ostree ${args.join(' ')}`);
  return check(sid.ostree[0]!, [...sid.ostree.slice(1), ...args]);
}

/** A physical root on its own loop-mounted ext4 image, deployed by the ostree CLI from a tree with `prepareRootConf`. */
function deploy(name: string, prepareRootConf: string): Deployment {
  const dir = path.join(work, name);
  fs.mkdirSync(dir);
  const disk = path.join(dir, 'disk.img');
  const sysroot = path.join(dir, 'sysroot');
  fs.mkdirSync(sysroot);
  check('truncate', ['-s', '256M', disk]);
  check('mkfs.ext4', ['-q', disk]);
  check('mount', ['-o', 'loop', disk, sysroot]);
  const commands: string[] = [];
  const repo = `--repo=${sysroot}/ostree/repo`;
  ostree(commands, ['admin', 'init-fs', sysroot]);
  ostree(commands, ['admin', 'os-init', STATEROOT, `--sysroot=${sysroot}`]);
  ostree(commands, [repo, 'config', 'set', 'ex-integrity.composefs', 'true']);
  const tree = path.join(dir, 'tree');
  sampleTree(tree, prepareRootConf, '1');
  const commit = ostree(commands, [repo, 'commit', `--branch=${STATEROOT}/base`, '--bootable', '--generate-composefs-metadata', `--tree=dir=${tree}`, '--subject=parity']).trim();
  // GVariant text of a bytestring: [byte 0xf5, 0xa2, ...]
  const metadata = ostree(commands, [repo, 'show', '--print-metadata-key=ostree.composefs.digest.v0', commit]);
  const commitDigest = [...metadata.matchAll(/0x([0-9a-f]{2})/g)].map((match) => match[1]).join('');
  ostree(commands, ['admin', 'deploy', `--sysroot=${sysroot}`, `--os=${STATEROOT}`, `${STATEROOT}/base`]);
  const entries = path.join(sysroot, 'boot/loader/entries');
  const entry = fs.readdirSync(entries).find((file) => file.endsWith('.conf'))!;
  const options = /^options (.*)$/m.exec(fs.readFileSync(path.join(entries, entry), 'utf8'))![1]!;
  const target = /(?:^| )ostree=(\S+)/.exec(options)![1]!;
  const deployDir = fs.realpathSync(path.join(sysroot, target));
  const image = path.join(deployDir, '.ostree.cfs');
  return { sysroot, options, deployDir, image, digest: parseDigest(fsverityDigest(image)), commitDigest, commands };
}

interface Outcome {
  /** Mounts of the new root, as "<mount point relative to it> <fstype> <ro|rw> <root within the source>". */
  mounts: string[];
  /** The root overlay's mount options (superblock options). */
  overlayOptions: string;
  /** Every path under /run: "<path> <type> <mode>[ -> <link target>]". */
  run: string[];
  /** /run/ostree-booted as GLib reads it. */
  booted: Record<string, unknown>;
  /** Where the run directory was copied to (for the generator). */
  runCopy: string;
}

/** Mount points at or below `root` in a mountinfo text. */
function mountsBelow(mountinfo: string, root: string): { mounts: string[]; overlayOptions: string } {
  const mounts: string[] = [];
  let overlayOptions = '';
  for (const line of mountinfo.split('\n')) {
    const fields = line.split(' ');
    if (fields.length < 10) continue;
    const point = fields[4]!.replace(/\\040/g, ' ');
    if (point !== root && !point.startsWith(`${root}/`)) continue;
    const dash = fields.indexOf('-');
    const fsType = fields[dash + 1]!;
    const ro = fields[5]!.split(',').includes('ro') ? 'ro' : 'rw';
    const rel = `/${path.relative(root, point)}`;
    if (rel === '/' && fsType === 'overlay') overlayOptions = fields[dash + 3]!;
    mounts.push(`${rel} ${fsType} ${ro} ${fsType === 'overlay' ? '-' : fields[3]}`);
  }
  return { mounts: mounts.sort(), overlayOptions };
}

function listRun(dir: string): string[] {
  const lines: string[] = [];
  const walk = (rel: string): void => {
    for (const name of fs.readdirSync(path.join(dir, rel)).sort()) {
      const relPath = path.join(rel, name);
      const stat = fs.lstatSync(path.join(dir, relPath));
      const type = stat.isDirectory() ? 'd' : stat.isSymbolicLink() ? 'l' : stat.isFile() ? 'f' : '?';
      lines.push(`${relPath} ${type} ${(stat.mode & 0o7777).toString(8)}${type === 'l' ? ` -> ${fs.readlinkSync(path.join(dir, relPath))}` : ''}`);
      if (type === 'd') walk(relPath);
    }
  };
  walk('.');
  return lines;
}

function readBooted(file: string): Record<string, unknown> {
  const result = run('/usr/bin/python3', ['-c', `import sys, json
from gi.repository import GLib
data = open(sys.argv[1], 'rb').read()
v = GLib.Variant.new_from_bytes(GLib.VariantType.new('a{sv}'), GLib.Bytes.new(data), False)
assert v.is_normal_form(), 'not in normal form'
print(json.dumps({'keys': [v.get_child_value(i).get_child_value(0).get_string() for i in range(v.n_children())], 'value': v.unpack()}))`, file]);
  assert.is(result.status, 0, result.stderr);
  return JSON.parse(result.stdout) as Record<string, unknown>;
}

/** A chroot that carries sid's /usr: the initramfs ostree-prepare-root and the generator run in. */
function chrootSetup(ir: string): string {
  return `mkdir -p ${ir} && mount -t tmpfs tmpfs ${ir}
mkdir -p ${ir}/usr ${ir}/proc ${ir}/dev ${ir}/run ${ir}/sysroot ${ir}/etc/ostree ${ir}/tmp ${ir}/out
mount --bind -o ro ${sid.root}/usr ${ir}/usr
mount --rbind /dev ${ir}/dev
mount -t proc proc ${ir}/proc`;
}
const CHROOT_LOADER = '/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 --library-path /usr/lib/x86_64-linux-gnu';

/** sid's ostree-prepare-root on `d`, in a chroot in a private mount namespace; the result is read before it exits. */
function ostreePrepareRoot(d: Deployment, name: string, initramfsConf: string): Outcome {
  const dir = path.join(work, `${name}-ostree`);
  fs.mkdirSync(dir);
  const ir = path.join(dir, 'ir');
  const runCopy = path.join(dir, 'run');
  fs.writeFileSync(path.join(dir, 'prepare-root.conf'), initramfsConf);
  const script = `set -e
${chrootSetup(ir)}
cp ${dir}/prepare-root.conf ${ir}/etc/ostree/prepare-root.conf
mount --bind ${d.sysroot} ${ir}/sysroot
chroot ${ir} ${CHROOT_LOADER} /usr/lib/ostree/ostree-prepare-root /sysroot '${d.options}' > ${dir}/prepare-root.log 2>&1
cat /proc/self/mountinfo > ${dir}/mountinfo
touch ${ir}/sysroot/etc/written-by-the-booted-system 2>/dev/null && echo etc-writable > ${dir}/probes || echo etc-readonly > ${dir}/probes
touch ${ir}/sysroot/usr/probe 2>/dev/null && echo root-writable >> ${dir}/probes || echo root-readonly >> ${dir}/probes
cp -a ${ir}/run ${runCopy}
`;
  const result = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { encoding: 'utf8' });
  const logText = fs.existsSync(path.join(dir, 'prepare-root.log')) ? fs.readFileSync(path.join(dir, 'prepare-root.log'), 'utf8') : '';
  assert.is(result.status, 0, `ostree-prepare-root: ${result.stderr}\n${logText}`);
  const { mounts, overlayOptions } = mountsBelow(fs.readFileSync(path.join(dir, 'mountinfo'), 'utf8'), path.join(ir, 'sysroot'));
  return { mounts, overlayOptions, run: listRun(runCopy), booted: readBooted(path.join(runCopy, 'ostree-booted')), runCopy };
}

/** The real steps, except the digest (from the test) and the overlay's verity (off: no fs-verity on this kernel). */
function hostSteps(digest: Digest): BootSteps {
  return {
    ...defaultBootSteps(),
    trustedImages: async () => [{ digest }],
    capPcr: async () => {},
    mountComposefs: (options) => mountComposefs({ ...options, verity: 'off' }),
  };
}

/** sealroot's boot on `d` (its physical root bound at a mount point of its own), then the same readings. */
async function sealrootBoot(d: Deployment, name: string, initramfsConf: string): Promise<Outcome> {
  const dir = path.join(work, `${name}-sealroot`);
  const sysroot = path.join(dir, 'sysroot');
  const runDir = path.join(dir, 'run');
  const initramfs = path.join(dir, 'initramfs');
  for (const sub of [sysroot, runDir]) fs.mkdirSync(sub, { recursive: true });
  writeTree(initramfs, { 'usr/lib/ostree/prepare-root.conf': initramfsConf });
  check('mount', ['--bind', d.sysroot, sysroot]);
  const config = path.join(dir, 'boot.toml');
  fs.writeFileSync(config, `[root]\nsysroot = "${sysroot}"\n`);
  try {
    await boot({ configPath: config, cmdline: d.options, runDir, initramfsRoot: initramfs, makeRootPrivate: false, log }, hostSteps(d.digest));
    const { mounts, overlayOptions } = mountsBelow(fs.readFileSync('/proc/self/mountinfo', 'utf8'), sysroot);
    const runCopy = path.join(dir, 'run-copy');
    check('cp', ['-a', runDir, runCopy]);
    return { mounts, overlayOptions, run: listRun(runCopy), booted: readBooted(path.join(runCopy, 'ostree-booted')), runCopy };
  } finally {
    umount2(sysroot, MNT_DETACH);
  }
}

/** sid's ostree-system-generator in a chroot whose /run is `runDir` and whose /proc/cmdline is `cmdline`. */
function generator(runDir: string, cmdline: string, name: string): { units: string[]; varMount: string | undefined; runAfter: string[] } {
  const dir = path.join(work, `${name}-generator`);
  fs.mkdirSync(dir);
  const ir = path.join(dir, 'ir');
  fs.writeFileSync(path.join(dir, 'cmdline'), `${cmdline}\n`);
  const runAfter = path.join(dir, 'run-after');
  const script = `set -e
${chrootSetup(ir)}
cp -a ${runDir}/. ${ir}/run/
mount --bind ${dir}/cmdline ${ir}/proc/cmdline
mkdir -p ${ir}/out/normal ${ir}/out/early ${ir}/out/late
chroot ${ir} ${CHROOT_LOADER} /usr/lib/systemd/system-generators/ostree-system-generator /out/normal /out/early /out/late > ${dir}/generator.log 2>&1
cp -a ${ir}/out ${dir}/out
cp -a ${ir}/run ${runAfter}
`;
  const result = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { encoding: 'utf8' });
  const logText = fs.existsSync(path.join(dir, 'generator.log')) ? fs.readFileSync(path.join(dir, 'generator.log'), 'utf8') : '';
  assert.is(result.status, 0, `ostree-system-generator: ${result.stderr}\n${logText}`);
  const units = (fs.readdirSync(path.join(dir, 'out'), { recursive: true }) as string[]).map(String)
    .filter((rel) => !fs.lstatSync(path.join(dir, 'out', rel)).isDirectory()).sort();
  const varFile = path.join(dir, 'out/normal/var.mount');
  return { units, varMount: fs.existsSync(varFile) ? fs.readFileSync(varFile, 'utf8') : undefined, runAfter: listRun(runAfter) };
}

const parity = deploy('parity', '[composefs]\nenabled = verity\n');
log.notice(`${sid.versions}; deployment made by: ${parity.commands.join(' && ')}`);

test(`the deployment was made by sid's ostree CLI (${sid.versions}) and boots by its own BLS options`, () => {
  assert.match(parity.options, /^ostree=\/ostree\/boot\.[01]\/testos\/[0-9a-f]{64}\/0$/);
  assert.ok(fs.existsSync(parity.image), '.ostree.cfs written by admin deploy ([ex-integrity] composefs=true)');
  assert.match(parity.deployDir, /\/ostree\/deploy\/testos\/deploy\/[0-9a-f]{64}\.0$/);
  // With composefs.enabled = verity the commit's ostree.composefs.digest.v0 is the deployed image's digest.
  assert.is(parity.commitDigest, parity.digest.bytes.toString('hex'));
  // composefs.enabled = verity: ostree computes every object's digest even without fs-verity on the objects.
  const dump = check('node_modules/.bin/node', ['src/cli/main.ts', 'inspect', parity.image], { cwd: path.resolve(import.meta.dirname, '../..') });
  assert.match(dump, /^\/usr\/lib\/big\.bin 120000 100644 .* [0-9a-f]{64}( |$)/m);
});

const CASES = [
  { label: 'composefs', conf: '[composefs]\nenabled = yes\n', root: 'ro', upper: false, etcTransient: false },
  { label: 'root.transient-ro', conf: '[composefs]\nenabled = yes\n[root]\ntransient-ro = true\n', root: 'ro', upper: true, etcTransient: false },
  { label: 'root.transient and etc.transient', conf: '[composefs]\nenabled = yes\n[root]\ntransient = true\n[etc]\ntransient = true\n', root: 'rw', upper: true, etcTransient: true },
] as const;

for (const { label, conf, root, upper, etcTransient } of CASES) {
  test(`${label}: ostree-prepare-root and sealroot boot the same deployment to the same mounts and /run, except what sealroot adds`, async () => {
    const name = label.replace(/\W/g, '-');
    const theirs = ostreePrepareRoot(parity, name, conf);
    const ours = await sealrootBoot(parity, name, conf);
    const deployRel = `/${path.relative(parity.sysroot, parity.deployDir)}`;
    const expected = [
      `/ overlay ${root} -`,
      etcTransient ? '/etc overlay rw -' : `/etc ext4 rw ${deployRel}/etc`,
      '/sysroot ext4 ro /',
      `/sysroot/ostree/deploy/${STATEROOT}/var ext4 rw /ostree/deploy/${STATEROOT}/var`,
    ].sort();
    assert.equal(theirs.mounts, expected);
    // sealroot mounts /var in the initramfs (it also runs without systemd); ostree built with systemd leaves it to
    // the generator's var.mount (checked below), so /var is the one mount only sealroot has.
    assert.equal(ours.mounts, [...expected, `/var ext4 rw /ostree/deploy/${STATEROOT}/var`].sort());
    // The root overlay: with root.transient(-ro) both carry a transient upper; with -ro the mount is read-only
    // (above) while the superblock stays rw: privileged code may remount the mount writable (ostree's man page).
    for (const side of [theirs, ours]) {
      assert.is(side.overlayOptions.includes('upperdir='), upper, side.overlayOptions);
      assert.match(side.overlayOptions, upper ? /^rw,/ : /^ro,/, side.overlayOptions);
    }
    // /run/ostree-booted: the same keys in the same order, the same values (composefs.verity false on both sides),
    // except where each keeps the transient /etc's upper (ostree: /run/ostree/transient-etc.XXXXXX).
    const transientEtc = (side: Outcome) => (side.booted.value as Record<string, unknown>)['transient-etc'];
    const normal = (side: Outcome) => ({ ...side.booted, value: { ...(side.booted.value as Record<string, unknown>), 'transient-etc': transientEtc(side) === undefined ? undefined : '(path)' } });
    assert.equal(normal(ours), normal(theirs));
    assert.is(transientEtc(theirs) !== undefined, etcTransient);
    if (etcTransient) assert.match(String(transientEtc(theirs)), /^\/run\/ostree\/transient-etc\.\w{6}$/);
    const keys = (theirs.booted.keys as string[]);
    assert.ok(keys.includes('root.transient-ro'));
    assert.is((theirs.booted.value as Record<string, unknown>)['root.transient-ro'], label === 'root.transient-ro');
    // /run: the same files, except ostree's EROFS mount point (libcomposefs' image_mountdir), both sides' transient
    // layers (ostree: .private/root, transient-etc.XXXXXX; sealroot: sealroot/transient) and sealroot's working
    // directory, and the marker that tells the generator /var is mounted.
    const ostreeOnly = (line: string) => line === 'ostree/.private/cfsroot-lower d 700' || line.startsWith('ostree/.private/root') || line.startsWith('ostree/transient-etc.');
    const theirsCommon = theirs.run.filter((line) => !ostreeOnly(line));
    const oursCommon = ours.run.filter((line) => !line.startsWith('sealroot') && line !== 'ostree/initramfs-mount-var f 644');
    assert.equal(oursCommon, theirsCommon);
    assert.ok(theirs.run.includes('ostree/.private d 0') && theirs.run.some((line) => line.startsWith('systemd/volatile-root l 777 -> /dev/block/7:')), theirs.run.join('\n'));
    assert.ok(ours.run.includes('ostree/initramfs-mount-var f 644'));
  });
}

test("sid's ostree-system-generator: var.mount from ostree-prepare-root's /run; none from sealroot's (marker consumed)", async () => {
  const theirs = ostreePrepareRoot(parity, 'gen', '[composefs]\nenabled = yes\n');
  const ours = await sealrootBoot(parity, 'gen', '[composefs]\nenabled = yes\n');
  const fromOstree = generator(theirs.runCopy, parity.options, 'gen-ostree');
  assert.ok(fromOstree.varMount !== undefined, `no var.mount: ${fromOstree.units.join(' ')}`);
  assert.match(fromOstree.varMount!, /^What=\/sysroot\/ostree\/deploy\/testos\/var$/m);
  assert.match(fromOstree.varMount!, /^Options=bind,slave,shared$/m);
  const fromSealroot = generator(ours.runCopy, parity.options, 'gen-sealroot');
  assert.equal(fromSealroot.units, [], 'the generator does nothing once the marker says /var is mounted');
  assert.not.ok(fromSealroot.runAfter.some((line) => line.startsWith('ostree/initramfs-mount-var')), 'the generator consumed the marker');
});

test('a composefs.enabled = yes deployment with objects lacking fs-verity is digest-less: sealroot refuses it before mount, naming the fix', async () => {
  const d = deploy('digestless', '[composefs]\nenabled = yes\n');
  const dump = check('node_modules/.bin/node', ['src/cli/main.ts', 'inspect', d.image], { cwd: path.resolve(import.meta.dirname, '../..') });
  assert.match(dump, /^\/usr\/lib\/big\.bin 120000 100644 \S+ \S+ \S+ \S+ \S+ \S+ - -( |$)/m, 'ostree wrote no digest');
  // The commit's ostree.composefs.digest.v0 names another image than the one deploy wrote (README: trust the
  // digest of the .ostree.cfs that boots).
  assert.is(d.commitDigest.length, 64);
  assert.is.not(d.commitDigest, d.digest.bytes.toString('hex'));
  try {
    await sealrootBoot(d, 'digestless', '[composefs]\nenabled = yes\n');
    assert.unreachable('the digest-less image was booted');
  } catch (error) {
    assert.instance(error, StepError);
    assert.is((error as StepError).step, 'validate-image');
    assert.match((error as StepError).message, /no fs-verity digest .*composefs\.enabled = verity.*fs-verity enabled on the objects before deploying/);
  }
  assert.not.ok(fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(path.join(work, 'digestless-sealroot')), 'nothing stays mounted');
});

test('volatile-root: /dev/gpt-auto-root when it is a block device (as ostree), else the physical root\'s device, none for major 0', () => {
  const dev = path.join(work, 'fake-dev');
  fs.mkdirSync(dev);
  const own = fs.statSync(parity.sysroot, { bigint: true }).dev;
  const expectedOwn = `/dev/block/${Number((own >> 8n) & 0xfffn)}:${Number((own & 0xffn) | ((own >> 12n) & ~0xffn))}`;
  assert.is(volatileRootTarget(parity.sysroot, dev), expectedOwn);
  assert.match(expectedOwn, /^\/dev\/block\/7:\d+$/, 'a loop device');
  // Not a block device: ignored, as ostree's S_ISBLK check does.
  fs.writeFileSync(path.join(dev, 'gpt-auto-root'), '');
  assert.is(volatileRootTarget(parity.sysroot, dev), expectedOwn);
  fs.rmSync(path.join(dev, 'gpt-auto-root'));
  check('mknod', [path.join(dev, 'gpt-auto-root'), 'b', '259', '300']);
  assert.is(volatileRootTarget(parity.sysroot, dev), '/dev/block/259:300');
  // A file system without a block device (tmpfs: major 0): no link, where ostree would ask btrfs.
  const tmpfs = path.join(work, 'fake-tmpfs');
  fs.mkdirSync(tmpfs);
  check('mount', ['-t', 'tmpfs', 'tmpfs', tmpfs]);
  try {
    assert.is(volatileRootTarget(tmpfs, path.join(work, 'no-dev')), undefined);
  } finally {
    check('umount', [tmpfs]);
  }
});

test.after(() => {
  for (const name of ['parity', 'digestless']) {
    const sysroot = path.join(work, name, 'sysroot');
    if (fs.existsSync(sysroot)) run('umount', ['--lazy', sysroot]);
  }
  run('umount', ['--lazy', work]);
  fs.rmSync(work, { recursive: true, force: true });
});

test.run();
