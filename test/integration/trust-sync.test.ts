// `sealroot trust sync` against swtpm: a sysroot with BLS entries of both layouts (composefs=<hex> with
// composefs/images/<hex> and <hex>.trust; ostree= with the deployment's .ostree.cfs and .ostree.cfs.trust), real
// images (sealroot mkimage), the updates applied oldest first, the TPM written only when something changes, and
// entries whose image is missing, malformed (the validator) or unsigned reported; hostile variants of the disk.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Fixture, fsverityDigest, makeComposefsFixture, writeTree } from '../helpers/composefs-fixture.ts';
import { startSwtpm, type Swtpm } from '../helpers/swtpm.ts';
import { check, requireRoot, requireTools, ROOT, run, type RunResult } from '../helpers/tools.ts';

requireRoot();
requireTools('swtpm', 'tpm2_pcrextend', 'fsverity', 'openssl', 'mkfifo');

const NODE = path.join(ROOT, 'node_modules/.bin/node');
const MAIN = path.join(ROOT, 'src/cli/main.ts');
const KEY = path.join(ROOT, 'keys/test-policy-key.pem');
const PUB = path.join(ROOT, 'keys/test-policy-key.pub.pem');
const PCRS = 'sha256:8,9';
const { FORCE_COLOR: _forceColor, ...ENV } = process.env;

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-trust-sync-'));
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));

/** Three releases of a small OS: v1 (installed), v2 (composefs layout), v3 (ostree layout). */
const release = (n: number): Fixture => makeComposefsFixture(path.join(work, `fx${n}`), {
  'usr/lib/os-release': `ID=testos\nVERSION_ID=${n}\n`,
  'usr/bin/tool': { file: `#!/bin/sh\necho release ${n}\n`, mode: 0o755 },
  'usr/share/data': Buffer.alloc(20000 + n, n),
});
const FX = [undefined, release(1), release(2), release(3)] as const;
const hexOf = (fixture: Fixture) => fixture.digest.replace(/^sha256:/, '');

function sealroot(...args: string[]): RunResult {
  return run(NODE, [MAIN, ...args], { env: ENV });
}

function signFor(image: string, digest: string, version: number, out: string, key = KEY): void {
  const result = sealroot('trust', 'sign', '--signing-key', key, '--digest', digest, '--image', image, '--version', String(version), '--out', out);
  assert.is(result.status, 0, result.stderr);
}

const DEPLOY = 'ostree/deploy/testos/deploy/0123abcd.0';
const BOOTLINK = 'ostree/boot.1/testos/feedface/0';

interface Machine {
  tpm: Swtpm;
  sysroot: string;
  state: string;
  entries: string;
}

/** A machine installed with release 1 (provisioned, 2 slots) and a sysroot whose boot menu names v2 and v3. */
async function machine(name: string): Promise<Machine> {
  const dir = path.join(work, name);
  const sysroot = path.join(dir, 'sysroot');
  const state = path.join(dir, 'state');
  const tpm = await startSwtpm();
  for (const pcr of [8, 9]) check('tpm2_pcrextend', ['-T', tpm.tcti, `${pcr}:sha256=${createHash('sha256').update(`trusted ${pcr}`).digest('hex')}`]);
  const provisioned = sealroot('provision', '--tpm', tpm.tcti, '--signing-key', KEY, '--digest', FX[1].digest, '--image', FX[1].image, '--pcrs', PCRS, '--state', state);
  assert.is(provisioned.status, 0, provisioned.stderr);
  const entries = path.join(sysroot, 'boot/loader/entries');
  // v2: composefs-rs layout.
  const hex2 = hexOf(FX[2]);
  writeTree(sysroot, { [`state/deploy/${hex2}/etc/hostname`]: 'v2\n', 'composefs/objects/.keep': '' });
  fs.mkdirSync(path.join(sysroot, 'composefs/images'), { recursive: true });
  fs.copyFileSync(FX[2].image, path.join(sysroot, 'composefs/images', hex2));
  signFor(FX[2].image, FX[2].digest, 2, path.join(sysroot, 'composefs/images', `${hex2}.trust`));
  // v3: ostree layout.
  writeTree(sysroot, {
    [`${DEPLOY}/etc/hostname`]: 'v3\n',
    'ostree/deploy/testos/var/.keep': '',
    'ostree/repo/objects/.keep': '',
    [BOOTLINK]: { symlink: '../../../deploy/testos/deploy/0123abcd.0' },
  });
  fs.copyFileSync(FX[3].image, path.join(sysroot, DEPLOY, '.ostree.cfs'));
  signFor(FX[3].image, FX[3].digest, 3, path.join(sysroot, DEPLOY, '.ostree.cfs.trust'));
  writeTree(entries, {
    'ostree-2-testos.conf': `title testos 3 (ostree)\nversion 3\nlinux /vmlinuz\ninitrd /initramfs.img\noptions root=UUID=1234 rw ostree=/${BOOTLINK}\n`,
    'testos-composefs-2.conf': `title testos 2 (composefs)\nlinux /vmlinuz\noptions root=UUID=1234\noptions rw composefs=${hex2} quiet\n`,
  });
  return { tpm, sysroot, state, entries };
}

function sync(m: Machine, ...extra: string[]): RunResult {
  return sealroot('trust', 'sync', '--sysroot', m.sysroot, '--tpm', m.tpm.tcti, '--policy-key', PUB, ...extra);
}

/** `entry name -> "outcome: detail"` from sync's stdout. */
function reports(result: RunResult, m: Machine): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of result.stdout.split('\n').filter(Boolean)) {
    const match = new RegExp(`^${m.entries.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/([^:]+): (.*)$`).exec(line);
    assert.ok(match, `unexpected line: ${line}`);
    map.set(match[1]!, match[2]!);
  }
  return map;
}

async function trustedSet(m: Machine): Promise<string[]> {
  await m.tpm.restart();
  for (const pcr of [8, 9]) check('tpm2_pcrextend', ['-T', m.tpm.tcti, `${pcr}:sha256=${createHash('sha256').update(`trusted ${pcr}`).digest('hex')}`]);
  const result = sealroot('unseal', '--tpm', m.tpm.tcti, '--pcrs', PCRS, '--state', m.state, '--policy-key', PUB);
  assert.is(result.status, 0, result.stderr);
  return result.stdout.split('\n').filter(Boolean);
}

/** swtpm's NV state file: it changes when (and only when) something is written to NV. */
function nvState(m: Machine): string {
  return createHash('sha256').update(fs.readFileSync(path.join(m.tpm.stateDir, 'tpm2-00.permall'))).digest('hex');
}

/** A composefs deployment `hex` on m's disk: its state directory, and `image` copied in as its image. */
function deploy(m: Machine, hex: string, image: string): void {
  writeTree(m.sysroot, { [`state/deploy/${hex}/etc/hostname`]: 'x\n' });
  fs.copyFileSync(image, path.join(m.sysroot, 'composefs/images', hex));
}

test('sync applies the updates beside both layouts\' images, oldest first; a second run writes nothing (all present)', async () => {
  const m = await machine('both');
  try {
    const first = sync(m);
    assert.is(first.status, 0, first.stdout + first.stderr);
    const got = reports(first, m);
    assert.equal([...got.keys()], ['ostree-2-testos.conf', 'testos-composefs-2.conf']);
    // Oldest first: v2 into the empty slot 1, then v3 replaces v1 (slot 0).
    assert.is(got.get('testos-composefs-2.conf'), `applied: version 2 (${FX[2].digest}) applied into slot 1, replacing an empty slot`);
    assert.is(got.get('ostree-2-testos.conf'), `applied: version 3 (${FX[3].digest}) applied into slot 0, replacing version 1`);
    assert.match(first.stderr, new RegExp(`trust: applied version 2 \\(${FX[2].digest}\\) into slot 1, replacing an empty slot`));

    const before = nvState(m);
    const second = sync(m);
    assert.is(second.status, 0, second.stderr);
    assert.equal([...reports(second, m).values()].map((line) => line.replace(/ \(.*$/, '')), ['present: version 3', 'present: version 2']);
    assert.is(nvState(m), before, 'a sync with nothing to change wrote the TPM');
    assert.not.match(second.stderr, /applied/);

    assert.equal(await trustedSet(m), [FX[3].digest, FX[2].digest]);
  } finally {
    await m.tpm.stop();
  }
});

test('a separate /boot (--boot): entries read there, confined to it; images from the sysroot; no entries: exit 0', async () => {
  const m = await machine('separate-boot');
  try {
    const boot = path.join(work, 'separate-boot', 'boot-partition');
    fs.mkdirSync(path.join(boot, 'loader'), { recursive: true });
    fs.renameSync(m.entries, path.join(boot, 'loader/entries'));
    const without = sync(m);
    assert.is(without.status, 1);
    assert.match(without.stderr, /^sealroot: tpm: cannot sync the trusted set: cannot list the boot entries in .*\/sysroot\/boot\/loader\/entries: /m);
    assert.is(without.stderr.split('\n').filter(Boolean).length, 1, without.stderr);
    // An entry on the boot partition symlinked to a file outside it is not followed.
    fs.writeFileSync(path.join(work, 'separate-boot', 'outside.conf'), `options composefs=${hexOf(FX[2])}\n`);
    fs.symlinkSync(path.join(work, 'separate-boot', 'outside.conf'), path.join(boot, 'loader/entries/a-out.conf'));
    const result = sync(m, '--boot', boot);
    assert.is(result.status, 1, result.stdout + result.stderr);
    const lines = result.stdout.split('\n').filter(Boolean);
    assert.is(lines.length, 3, result.stdout);
    assert.match(lines[0]!, new RegExp(`^${boot}/loader/entries/a-out\\.conf: missing: .*symbolic link`));
    assert.match(lines[1]!, new RegExp(`^${boot}/loader/entries/ostree-2-testos\\.conf: applied: version 3 `));
    assert.match(lines[2]!, new RegExp(`^${boot}/loader/entries/testos-composefs-2\\.conf: applied: version 2 `));
    // An empty boot menu: nothing to do, nothing written.
    const empty = path.join(work, 'separate-boot', 'empty-boot');
    fs.mkdirSync(path.join(empty, 'loader/entries'), { recursive: true });
    const before = nvState(m);
    const none = sync(m, '--boot', empty);
    assert.is(none.status, 0, none.stderr);
    assert.is(none.stdout, 'no boot entries\n');
    assert.is(nvState(m), before);
    assert.equal(await trustedSet(m), [FX[3].digest, FX[2].digest]);
  } finally {
    await m.tpm.stop();
  }
});

test('sync reports entries whose image is missing, malformed, of another digest or size, unsigned or refused; exit 1', async () => {
  const m = await machine('reports');
  try {
    const hex2 = hexOf(FX[2]);
    const images = path.join(m.sysroot, 'composefs/images');
    // An entry whose image was removed (its update still there), and one whose state directory does not exist.
    const gone = hexOf(FX[1]);
    writeTree(m.sysroot, { [`state/deploy/${gone}/etc/hostname`]: 'gone\n' });
    fs.copyFileSync(path.join(images, `${hex2}.trust`), path.join(images, `${gone}.trust`));
    writeTree(m.entries, {
      'a-image-missing.conf': `options composefs=${gone}\n`,
      'b-no-state.conf': `options composefs=${'ab'.repeat(32)}\n`,
      'c-no-layout.conf': 'title nothing\noptions root=/dev/sda1 rw\n',
    });
    // Malformed: an image whose superblock is corrupted, signed for exactly those bytes (the key holder's mistake).
    const broken = Buffer.from(fs.readFileSync(FX[2].image));
    broken.writeUInt32LE(0xdeadbeef, 1024);
    const brokenFile = path.join(work, 'broken.cfs');
    fs.writeFileSync(brokenFile, broken);
    const brokenDigest = fsverityDigest(brokenFile);
    const brokenHex = brokenDigest.replace(/^sha256:/, '');
    deploy(m, brokenHex, brokenFile);
    const signed = sealroot('trust', 'sign', '--signing-key', KEY, '--digest', brokenDigest, '--size', String(broken.length), '--version', '7', '--out', path.join(images, `${brokenHex}.trust`));
    assert.is(signed.status, 0, signed.stderr);
    // Another digest: v3's update put beside v2's image under a third name; another size: a size-only signature.
    const other = 'cd'.repeat(32);
    deploy(m, other, FX[2].image);
    fs.copyFileSync(path.join(m.sysroot, DEPLOY, '.ostree.cfs.trust'), path.join(images, `${other}.trust`));
    // Unsigned: no update file; an update signed by another key.
    const unsignedHex = 'ef'.repeat(32);
    deploy(m, unsignedHex, FX[2].image);
    const otherKey = path.join(work, 'other.pem');
    check('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', otherKey]);
    const foreignHex = hexOf(FX[1]) === gone ? '12'.repeat(32) : gone;
    deploy(m, foreignHex, FX[2].image);
    signFor(FX[2].image, FX[2].digest, 9, path.join(images, `${foreignHex}.trust`), otherKey);
    writeTree(m.entries, {
      'd-malformed.conf': `options composefs=${brokenHex}\n`,
      'e-other-digest.conf': `options composefs=${other}\n`,
      'f-unsigned.conf': `options composefs=${unsignedHex}\n`,
      'g-foreign-key.conf': `options composefs=${foreignHex}\n`,
    });

    const result = sync(m);
    assert.is(result.status, 1, result.stdout + result.stderr);
    const got = reports(result, m);
    assert.match(got.get('a-image-missing.conf')!, /^missing: .*composefs\/images\/[0-9a-f]{64}: does not exist/);
    assert.match(got.get('b-no-state.conf')!, /^missing: no image for this entry: no deployment state directory/);
    assert.match(got.get('c-no-layout.conf')!, /^missing: no image for this entry: neither ostree= nor composefs= is on the kernel command line/);
    assert.match(got.get('d-malformed.conf')!, new RegExp(`^malformed: validate-image: .*bad EROFS magic 0xdeadbeef at offset 1024 \\(${m.sysroot}/composefs/images/${brokenHex}\\)`));
    assert.match(got.get('e-other-digest.conf')!, new RegExp(`^malformed: verify-image: digest mismatch: the image is ${FX[2].digest}, the trusted digest is ${FX[3].digest}`));
    assert.match(got.get('f-unsigned.conf')!, new RegExp(`^unsigned: ${m.sysroot}/composefs/images/${unsignedHex}\\.trust: does not exist`));
    assert.match(got.get('g-foreign-key.conf')!, new RegExp(`^unsigned: ${m.sysroot}/composefs/images/${foreignHex}\\.trust: version 9 \\(${FX[2].digest}\\) is not signed by the policy key`));
    // The good entries were still applied.
    assert.match(got.get('testos-composefs-2.conf')!, /^applied: version 2/);
    assert.match(got.get('ostree-2-testos.conf')!, /^applied: version 3/);
    assert.is(got.size, 9);

    // v1's update (genuine, older than both slots now) beside v1's image: refused by the TPM, reported, nothing written.
    fs.copyFileSync(FX[1].image, path.join(images, gone));
    signFor(FX[1].image, FX[1].digest, 1, path.join(images, `${gone}.trust`));
    const before = nvState(m);
    const again = sync(m);
    assert.is(again.status, 1);
    assert.match(reports(again, m).get('b-no-state.conf')!, /^missing: /);
    assert.match(reports(again, m).get('a-image-missing.conf')!, /^refused: version 1 .*: refused by the TPM: .*is not newer than any version in the trusted set/);
    assert.is(nvState(m), before);
    assert.equal(await trustedSet(m), [FX[3].digest, FX[2].digest]);
  } finally {
    await m.tpm.stop();
  }
});

test('hostile disk: an entry that is a FIFO, symlinks out of the sysroot, a huge update file, too many entries', async () => {
  const m = await machine('hostile');
  try {
    const hex2 = hexOf(FX[2]);
    const images = path.join(m.sysroot, 'composefs/images');
    // A FIFO named like an entry (a blocking read would hang the sync).
    check('mkfifo', [path.join(m.entries, 'a-fifo.conf')]);
    // An entry symlinked to a file outside the sysroot naming v2: not followed.
    const outside = path.join(work, 'outside-entry.conf');
    fs.writeFileSync(outside, `options composefs=${hex2}\n`);
    fs.symlinkSync(outside, path.join(m.entries, 'b-symlink-out.conf'));
    // The ostree deployment's update replaced by a symlink to a file outside the sysroot.
    const update = path.join(m.sysroot, DEPLOY, '.ostree.cfs.trust');
    fs.renameSync(update, path.join(work, 'v3-outside.trust'));
    fs.symlinkSync(path.join(work, 'v3-outside.trust'), update);
    // v2's update: a huge (sparse) file.
    const huge = path.join(images, `${hex2}.trust`);
    fs.renameSync(huge, path.join(work, 'v2.trust'));
    fs.writeFileSync(huge, '');
    fs.truncateSync(huge, 2 ** 30);
    const started = Date.now();
    const result = sync(m);
    assert.ok(Date.now() - started < 60_000);
    assert.is(result.status, 1, result.stdout + result.stderr);
    const got = reports(result, m);
    assert.match(got.get('a-fifo.conf')!, /^missing: no image for this entry: .*a-fifo\.conf is a FIFO|^missing: .*not a regular file/);
    assert.match(got.get('b-symlink-out.conf')!, /^missing: no image for this entry: .*symbolic link/);
    assert.match(got.get('ostree-2-testos.conf')!, /^unsigned: .*\.ostree\.cfs\.trust: .*symbolic link/);
    assert.match(got.get('testos-composefs-2.conf')!, /^unsigned: .*\.trust: .*1073741824 bytes, over the limit of 262144/);
    assert.equal(await trustedSet(m), [FX[1].digest], 'nothing applied');

    // The genuine files back: applied.
    fs.rmSync(huge);
    fs.renameSync(path.join(work, 'v2.trust'), huge);
    fs.rmSync(update);
    fs.renameSync(path.join(work, 'v3-outside.trust'), update);
    fs.rmSync(path.join(m.entries, 'a-fifo.conf'));
    fs.rmSync(path.join(m.entries, 'b-symlink-out.conf'));
    const ok = sync(m);
    assert.is(ok.status, 0, ok.stdout + ok.stderr);
    // An image that is a FIFO (its update genuine): refused, not read (a read would block).
    const image2 = path.join(images, hex2);
    fs.renameSync(image2, path.join(work, 'v2.cfs'));
    check('mkfifo', [image2]);
    const fifoImage = sync(m);
    assert.is(fifoImage.status, 1, fifoImage.stdout + fifoImage.stderr);
    assert.match(reports(fifoImage, m).get('testos-composefs-2.conf')!, /^malformed: .*(FIFO|not a regular file)/);
    fs.rmSync(image2);
    fs.renameSync(path.join(work, 'v2.cfs'), image2);
    // A boot menu of thousands of entries is not walked.
    for (let i = 0; i < 100; i++) fs.writeFileSync(path.join(m.entries, `z${i}.conf`), 'options quiet\n');
    const many = sync(m);
    assert.is(many.status, 1);
    assert.match(many.stderr, /holds 102 entries \(at most 64 are read\)/);
    assert.equal(await trustedSet(m), [FX[3].digest, FX[2].digest]);
  } finally {
    await m.tpm.stop();
  }
});

test.run();
