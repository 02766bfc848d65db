// sealed memfd -> loop -> EROFS -> composefs overlay on the host kernel (no fs-verity here: verity=off for
// content checks; verity=require is shown to refuse objects without fs-verity, and proven in QEMU).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLogger } from '../../src/log.ts';
import { createDetachedMount } from '../../src/mount/fs-context.ts';
import { mountComposefs, MountError } from '../../src/mount/composefs.ts';
import { escapeOverlayPath, legacyOverlayParams } from '../../src/mount/overlay-options.ts';
import { closeFd } from '../../src/sys/io.ts';
import { MNT_DETACH, MOUNT_ATTR_RDONLY, moveMountTo, umount2 } from '../../src/sys/mountapi.ts';
import {
  leftoversSince, listTree, makeComposefsFixture, privateScratch, releaseScratch, sealedCopy, snapshot, type TreeSpec,
} from '../helpers/composefs-fixture.ts';
import { check, requireRoot, requireTools, ROOT, run } from '../helpers/tools.ts';

requireRoot();
requireTools('losetup', 'mkfs.erofs', 'setfattr', 'fsverity');
const log = createLogger({ kmsg: false, verbose: false });
const work = privateScratch('sealroot-mount-');
const SPEC: TreeSpec = {
  'usr/bin/tool': '#!/bin/sh\necho tool\n',
  'usr/lib/data.bin': Buffer.alloc(200_000, 0x5a),
  'usr/share/doc/empty': '',
  'usr/share/same-a': 'same content\n',
  'usr/share/same-b': 'same content\n',
  'etc/hostname': 'sealroot\n',
  'lib': { symlink: 'usr/lib' },
  'var': { dir: true },
};
const fixture = makeComposefsFixture(path.join(work, 'fx'), SPEC);
const mkimageFixture = fixture;
/** The same tree made by the standard tools (mkfs.erofs), which sealroot's writer had no part in. */
const toolsFixture = makeComposefsFixture(path.join(work, 'fx-tools'), SPEC, { builder: 'mkfs.erofs' });

function mountinfoLine(target: string): string {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((line) => line.split(' ')[4] === target) ?? '';
}

for (const [name, fixture] of [['sealroot mkimage', mkimageFixture], ['mkfs.erofs', toolsFixture]] as const) test(`verity=off (${name} image): the overlay shows the source tree; loop device read-only over the memfd; nothing left after unmount`, () => {
  const before = snapshot(work);
  const target = fs.mkdtempSync(path.join(work, 'mnt-'));
  const fd = sealedCopy(fixture.image);
  const mounted = mountComposefs({ imageFd: fd, objectDirs: [fixture.objects], target, verity: 'off', hasAcls: false, log, workDir: path.join(work, 'run') });
  closeFd(fd);
  try {
    assert.is(mounted.overlayApi, 'lowerdir+');
    assert.equal(listTree(target), listTree(fixture.source));
    const line = mountinfoLine(target);
    assert.match(line, / - overlay composefs ro,lowerdir\+=/);
    assert.match(line, new RegExp(`datadir\\+=${fixture.objects}`));
    assert.match(line, /metacopy=on/);
    assert.match(line, /redirect_dir=on/);
    const loop = path.basename(mounted.loopDevice);
    assert.is(fs.readFileSync(`/sys/block/${loop}/ro`, 'utf8').trim(), '1');
    assert.match(fs.readFileSync(`/sys/block/${loop}/loop/backing_file`, 'utf8'), /memfd:sealroot-test-image/);
    assert.is(fs.readFileSync(`/sys/block/${loop}/loop/autoclear`, 'utf8').trim(), '1');
    assert.throws(() => fs.writeFileSync(path.join(target, 'new'), 'x'), (e: unknown) => (e as NodeJS.ErrnoException).code === 'EROFS');
    // The EROFS layer's temporary attachment is gone already; the overlay holds it.
    assert.equal(fs.readdirSync(path.join(work, 'run')), []);
  } finally {
    mounted.unmount();
  }
  assert.equal(leftoversSince(before), []);
});

test('verity=require: mounted with verity=require, and an object without fs-verity reads as EIO', () => {
  const before = snapshot(work);
  const target = fs.mkdtempSync(path.join(work, 'mnt-'));
  const fd = sealedCopy(fixture.image);
  const mounted = mountComposefs({ imageFd: fd, objectDirs: [fixture.objects], target, verity: 'require', hasAcls: false, log, workDir: path.join(work, 'run') });
  closeFd(fd);
  try {
    assert.match(mountinfoLine(target), /verity=require/);
    assert.equal(fs.readdirSync(path.join(target, 'usr/bin')), ['tool']); // metadata comes from the image
    assert.throws(() => fs.readFileSync(path.join(target, 'usr/lib/data.bin')), (e: unknown) => (e as NodeJS.ErrnoException).code === 'EIO');
    assert.is(fs.readFileSync(path.join(target, 'usr/bin/tool'), 'utf8'), SPEC['usr/bin/tool']); // inline in the image: no object
  } finally {
    mounted.unmount();
  }
  assert.equal(leftoversSince(before), []);
});

test('the legacy lowerdir=IMG::OBJ string works, with a comma and a colon escaped in the objects path', () => {
  const odd = path.join(work, 'objects,with:odd');
  fs.cpSync(fixture.objects, odd, { recursive: true });
  const before = snapshot(work);
  const lower = fs.mkdtempSync(path.join(work, 'lower-'));
  const target = fs.mkdtempSync(path.join(work, 'mnt-'));
  const fd = sealedCopy(fixture.image);
  // The same pieces as mountComposefs, with the legacy parameters forced.
  const loopNumber = Number(check('losetup', ['--find', '--show', '--read-only', `/proc/${process.pid}/fd/${fd}`]).trim().replace('/dev/loop', ''));
  try {
    const erofs = createDetachedMount('erofs', [{ kind: 'string', key: 'source', value: `/dev/loop${loopNumber}` }, { kind: 'flag', key: 'ro' }], MOUNT_ATTR_RDONLY);
    moveMountTo(erofs, lower);
    closeFd(erofs);
    const overlay = createDetachedMount('overlay', legacyOverlayParams({ lower, data: [odd], verity: 'off' }), MOUNT_ATTR_RDONLY);
    moveMountTo(overlay, target);
    closeFd(overlay);
    assert.equal(listTree(target), listTree(fixture.source));
    umount2(target, MNT_DETACH);
    umount2(lower, MNT_DETACH);
  } finally {
    closeFd(fd);
    run('losetup', ['-d', `/dev/loop${loopNumber}`]);
  }
  assert.equal(leftoversSince(before), []);
});

test('the legacy fallback path of mountComposefs: lowerdir=IMG::OBJ1::OBJ2 with two data layers, escaped paths', () => {
  const odd = path.join(work, 'second,store:x');
  fs.mkdirSync(odd, { recursive: true });
  const before = snapshot(work);
  const target = fs.mkdtempSync(path.join(work, 'mnt-'));
  const fd = sealedCopy(fixture.image);
  const mounted = mountComposefs({
    imageFd: fd, objectDirs: [odd, fixture.objects], target, verity: 'off', hasAcls: false, log, workDir: path.join(work, 'run'), overlayApi: 'legacy',
  });
  closeFd(fd);
  try {
    assert.is(mounted.overlayApi, 'legacy');
    assert.equal(listTree(target), listTree(fixture.source));
    // mountinfo shows the layer list as passed (`\,` `\:` escapes), with `\` and `,` octal-escaped by the kernel.
    const shown = (p: string) => escapeOverlayPath(p).replace(/\\/g, '\\134').replace(/,/g, '\\054');
    assert.ok(mountinfoLine(target).includes(`lowerdir=${work}/run/erofs.`), mountinfoLine(target));
    assert.ok(mountinfoLine(target).includes(`::${shown(odd)}::${fixture.objects},`), mountinfoLine(target));
  } finally {
    mounted.unmount();
  }
  assert.equal(leftoversSince(before), []);
});

test('loop devices: concurrent attachers each get their own device (LOOP_CONFIGURE EBUSY retried)', () => {
  const before = snapshot(work);
  const node = path.join(ROOT, 'node_modules/.bin/node');
  const script = `
import { attachReadOnlyLoop } from '${ROOT}/src/mount/loop-device.ts';
import { sealedCopy } from '${ROOT}/test/helpers/composefs-fixture.ts';
const fd = sealedCopy(${JSON.stringify(fixture.image)});
const held = [];
for (let i = 0; i < 6; i++) held.push(attachReadOnlyLoop(fd, 'sealroot-race').path);
console.log(held.join(' '));
process.stdin.resume();
process.stdin.on('end', () => process.exit(0)); // hold the devices until the parent has seen every child's
`;
  const children = Array.from({ length: 4 }, () => spawn(node, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'pipe'] }));
  let reported = 0;
  const outputs = children.map((child) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.endsWith('\n') && ++reported === children.length) for (const c of children) c.stdin.end();
    });
    child.stderr.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    child.on('close', () => { if (!out.endsWith('\n')) for (const c of children) c.stdin.end(); });
    return () => out;
  });
  return Promise.all(children.map((child) => new Promise<number | null>((resolve) => child.on('close', resolve)))).then((codes) => {
    assert.equal(codes, [0, 0, 0, 0], outputs.map((o) => o()).join('\n'));
    const devices = outputs.flatMap((o) => o().trim().split(' '));
    assert.is(devices.length, 24);
    assert.is(new Set(devices).size, 24, 'every attach got a distinct device');
    assert.equal(leftoversSince(before, 5000), [], 'autoclear devices detach when their holders exit');
  });
});

test('failures leave no mount and no loop device: missing objects dir, a file as objects dir, not an EROFS image, bad target', () => {
  const before = snapshot(work);
  const target = fs.mkdtempSync(path.join(work, 'mnt-'));
  const attempt = (options: { image?: string; objects?: string[]; target?: string }, stage: MountError['stage'], pattern: RegExp) => {
    const fd = sealedCopy(options.image ?? fixture.image);
    try {
      assert.throws(() => mountComposefs({
        imageFd: fd, objectDirs: options.objects ?? [fixture.objects], target: options.target ?? target, verity: 'off', hasAcls: false, log, workDir: path.join(work, 'run'),
      }), (e: unknown) => e instanceof MountError && e.stage === stage && pattern.test(e.message));
    } finally {
      closeFd(fd);
    }
    assert.equal(leftoversSince(before), [], `after the ${stage} failure`);
    assert.equal(fs.readdirSync(path.join(work, 'run')), [], `temporary directories after the ${stage} failure`);
  };
  attempt({ objects: [path.join(work, 'no-such-objects')] }, 'overlay', /no-such-objects.*ENOENT/);
  attempt({ objects: [fixture.image] }, 'overlay', /is not a directory/);
  const junk = path.join(work, 'junk.img');
  fs.writeFileSync(junk, Buffer.alloc(64 * 1024, 0x11));
  attempt({ image: junk }, 'erofs', /cannot mount the image .* as EROFS/);
  attempt({ target: path.join(work, 'no-such-target') }, 'attach', /cannot attach the composefs overlay/);
  assert.equal(fs.readdirSync(target), []);
});

test('sealroot mount (CLI): --verity=off warns loudly and mounts; bad arguments are usage errors', () => {
  const target = fs.mkdtempSync(path.join(work, 'cli-'));
  const before = snapshot(work);
  const main = path.join(ROOT, 'src/cli/main.ts');
  const node = path.join(ROOT, 'node_modules/.bin/node');
  const result = run(node, [main, 'mount', '--objects', fixture.objects, '--verity=off', fixture.image, target]);
  try {
    assert.is(result.status, 0, result.stderr);
    assert.match(result.stderr, /--verity=off: object files are NOT checked/);
    assert.match(result.stderr, /no --digest: the image .* is NOT verified/);
    assert.match(result.stdout, /overlay via lowerdir\+, verity=off/);
    assert.equal(listTree(target), listTree(fixture.source));
  } finally {
    if (result.status === 0) umount2(target, MNT_DETACH);
  }
  assert.equal(leftoversSince(before), []);
  assert.is(run(node, [main, 'mount', fixture.image, target]).status, 2);
  assert.is(run(node, [main, 'mount', '--objects', fixture.objects, '--verity=maybe', fixture.image, target]).status, 2);
});

test('sealroot mount --digest: the verified image mounts; a wrong digest refuses it and leaves nothing', () => {
  const target = fs.mkdtempSync(path.join(work, 'cli-digest-'));
  const before = snapshot(work);
  const main = path.join(ROOT, 'src/cli/main.ts');
  const node = path.join(ROOT, 'node_modules/.bin/node');
  const ok = run(node, [main, 'mount', '--objects', fixture.objects, '--verity=off', '--digest', fixture.digest, fixture.image, target]);
  try {
    assert.is(ok.status, 0, ok.stderr);
    assert.not.match(ok.stderr, /NOT verified/);
    assert.equal(listTree(target), listTree(fixture.source));
  } finally {
    if (ok.status === 0) umount2(target, MNT_DETACH);
  }
  const wrong = run(node, [main, 'mount', '--objects', fixture.objects, '--digest', `sha256:${'0'.repeat(64)}`, fixture.image, target]);
  assert.is(wrong.status, 1);
  assert.match(wrong.stderr, /sealroot: verify-image: digest mismatch/);
  assert.equal(leftoversSince(before), []);
  assert.equal(fs.readdirSync(target), []);
  assert.is(run(node, [main, 'mount', '--objects', fixture.objects, '--digest', 'md5:abc', fixture.image, target]).status, 2);
});

test.after(() => {
  releaseScratch(work);
});

test.run();
