import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseCmdline } from '../../src/config/cmdline.ts';
import { parseMountinfo } from '../../src/boot/mountinfo.ts';
import {
  appendOverlayParams, escapeOverlayPath, legacyLowerdir, legacyMountData, legacyOverlayParams,
} from '../../src/mount/overlay-options.ts';
import { composefsKargDigest, parseSetupRootConf } from '../../src/root/composefs.ts';
import { KeyFileError, parseKeyFile } from '../../src/root/keyfile.ts';
import { encodeBootedMetadata } from '../../src/root/ostree-booted.ts';
import { chooseLayout } from '../../src/root/layout.ts';
import { interpretPrepareRootConf } from '../../src/root/ostree.ts';
import { devMajorMinor } from '../../src/root/ostree-run.ts';
import { LayoutError } from '../../src/root/plan.ts';

const none = parseCmdline('');

test('prepare-root.conf: composefs enabled, defaults, and etc/root transient, sysroot.readonly', () => {
  const conf = (text: string) => interpretPrepareRootConf(parseKeyFile(text, 'prepare-root.conf'), none);
  assert.equal(conf('[composefs]\nenabled = yes\n'), { rootTransient: false, rootTransientReadonly: false, etcTransient: false, sysrootReadonly: true });
  for (const enabled of ['true', '1', 'maybe', 'verity', 'signed']) {
    assert.equal(conf(`[composefs]\nenabled = ${enabled}\n`).sysrootReadonly, true, enabled);
  }
  assert.equal(conf('# comment\n[composefs]\nenabled=yes\n[root]\ntransient = true\n[etc]\ntransient=true\n[sysroot]\nreadonly=false\n'),
    { rootTransient: true, rootTransientReadonly: false, etcTransient: true, sysrootReadonly: false });
});

test('prepare-root.conf: root.transient-ro (ostree 2026) is a transient root mounted read-only; both keys is an error, as in otcore', () => {
  const conf = (text: string) => interpretPrepareRootConf(parseKeyFile(text, 'prepare-root.conf'), none);
  assert.equal(conf('[composefs]\nenabled = verity\n[root]\ntransient-ro = true\n'),
    { rootTransient: true, rootTransientReadonly: true, etcTransient: false, sysrootReadonly: true });
  assert.equal(conf('[composefs]\nenabled = verity\n[root]\ntransient = true\ntransient-ro = false\n').rootTransientReadonly, false);
  assert.throws(() => conf('[composefs]\nenabled = yes\n[root]\ntransient = true\ntransient-ro = true\n'),
    (e: unknown) => e instanceof LayoutError && /cannot set both root\.transient and root\.transient-ro/.test(e.message));
  assert.throws(() => conf('[composefs]\nenabled = yes\n[root]\ntransient-ro = maybe\n'),
    (e: unknown) => e instanceof KeyFileError && /root\.transient-ro must be true or false/.test(e.message));
});

test('volatile-root: /dev/block/MAJ:MIN from a dev_t as glibc splits it (major 259 and minor 300 use the high bits)', () => {
  assert.equal(devMajorMinor(0x801n), { major: 8, minor: 1 });
  // makedev(259, 300) = (300 & 0xff) | ((259 & 0xfff) << 8) | ((300 & ~0xff) << 12)
  assert.equal(devMajorMinor(0x2cn | (259n << 8n) | (0x100n << 12n)), { major: 259, minor: 300 });
  assert.equal(devMajorMinor(0n), { major: 0, minor: 0 });
});

test('prepare-root.conf: composefs disabled (file default, file or karg) is refused, never obeyed', () => {
  const refuse = (text: string, cmdline = none) => assert.throws(
    () => interpretPrepareRootConf(parseKeyFile(text, 'c'), cmdline), (e: unknown) => e instanceof LayoutError && /composefs is disabled/.test(e.message));
  refuse('');
  refuse('[composefs]\nenabled = no\n');
  refuse('[composefs]\nenabled = yes\n', parseCmdline('ostree.prepare-root.composefs=0'));
  // The karg can also turn it on.
  assert.ok(interpretPrepareRootConf(parseKeyFile('', 'c'), parseCmdline('ostree.prepare-root.composefs=1')).sysrootReadonly);
});

test('key files: later files override key by key; malformed lines and values are refused', () => {
  const merged = parseKeyFile('[etc]\ntransient = true\n', 'usr/lib', parseKeyFile('[composefs]\nenabled = yes\n[etc]\ntransient = false\n', 'etc'));
  assert.equal(interpretPrepareRootConf(merged, none).etcTransient, true);
  assert.throws(() => parseKeyFile('enabled = yes\n', 'x'), (e: unknown) => e instanceof KeyFileError && /outside of any \[group\]/.test(e.message));
  assert.throws(() => parseKeyFile('[a]\njunk\n', 'x'), (e: unknown) => e instanceof KeyFileError && /x:2/.test(e.message));
  assert.throws(() => interpretPrepareRootConf(parseKeyFile('[composefs]\nenabled=yes\n[root]\ntransient=yes\n', 'x'), none),
    (e: unknown) => e instanceof KeyFileError && /root\.transient must be true or false/.test(e.message));
  assert.throws(() => interpretPrepareRootConf(parseKeyFile('[composefs]\nenabled=perhaps\n', 'x'), none), (e: unknown) => e instanceof KeyFileError);
});

test('setup-root-conf.toml: defaults etc=overlay var=bind; mount modes; legacy transient; errors', () => {
  assert.equal(parseSetupRootConf(''), { rootTransient: false, etc: 'overlay', var: 'bind' });
  assert.equal(parseSetupRootConf('[root]\ntransient = true\n[etc]\nmount = "transient"\n[var]\nmount = "none"\n'),
    { rootTransient: true, etc: 'transient', var: 'none' });
  assert.equal(parseSetupRootConf('[etc]\nmount = "bind"\n[var]\nmount = "overlay"\n'), { rootTransient: false, etc: 'bind', var: 'overlay' });
  assert.equal(parseSetupRootConf('[var]\ntransient = true\n'), { rootTransient: false, etc: 'overlay', var: 'transient' });
  assert.equal(parseSetupRootConf('[etc]\nmount = "bind"\ntransient = true\n').etc, 'bind');
  for (const bad of ['[etc]\nmount = "tmpfs"\n', '[root]\ntransient = "yes"\n', 'etc = 3\n', '[etc\n']) {
    assert.throws(() => parseSetupRootConf(bad), (e: unknown) => e instanceof LayoutError, bad);
  }
});

test('composefs= karg: SHA-256 and SHA-512 digests; ? prefix, junk and absence refused', () => {
  const sha256 = 'a'.repeat(64);
  const sha512 = 'b'.repeat(128);
  assert.is(composefsKargDigest(parseCmdline(`composefs=${sha256}`)).digest.algorithm, 'sha256');
  assert.is(composefsKargDigest(parseCmdline(`composefs=${sha512}`)).digest.algorithm, 'sha512');
  const refused: [string, RegExp][] = [
    [`composefs=?${sha256}`, /fs-verity optional/],
    ['composefs=abc', /not a digest/],
    [`composefs=${'A'.repeat(64)}`, /not a digest/],
    [`composefs=${'a'.repeat(63)}`, /not a digest/],
    ['quiet', /no composefs= karg/],
  ];
  for (const [line, pattern] of refused) {
    assert.throws(() => composefsKargDigest(parseCmdline(line)), (e: unknown) => e instanceof LayoutError && pattern.test(e.message), line);
  }
});

test('layout: chosen by configuration or by exactly one of ostree= / composefs=', () => {
  assert.is(chooseLayout('auto', parseCmdline('ostree=/ostree/boot.1/x/y/0')), 'ostree');
  assert.is(chooseLayout('auto', parseCmdline('composefs=ab')), 'composefs');
  assert.is(chooseLayout('composefs', parseCmdline('ostree=/x')), 'composefs');
  assert.throws(() => chooseLayout('auto', parseCmdline('ostree=/x composefs=ab')), (e: unknown) => e instanceof LayoutError && /both/.test(e.message));
  assert.throws(() => chooseLayout('auto', parseCmdline('root=/dev/vda')), (e: unknown) => e instanceof LayoutError && /neither/.test(e.message));
});

test('overlay options: lowerdir+/datadir+ per layer; legacy string escapes \\ , : and puts data layers after ::', () => {
  const layers = { lower: '/run/sealroot/erofs.x', data: ['/sysroot/objects', '/a,b:c\\d'], verity: 'require' as const };
  assert.equal(appendOverlayParams(layers).map((p) => (p.kind === 'string' ? `${p.key}=${p.value}` : p.key)), [
    'source=composefs', 'metacopy=on', 'redirect_dir=on', 'verity=require',
    'lowerdir+=/run/sealroot/erofs.x', 'datadir+=/sysroot/objects', 'datadir+=/a,b:c\\d',
  ]);
  assert.is(escapeOverlayPath('/a,b:c\\d'), '/a\\,b\\:c\\\\d');
  assert.is(legacyLowerdir(layers), '/run/sealroot/erofs.x::/sysroot/objects::/a\\,b\\:c\\\\d');
  assert.is(legacyMountData(layers), 'metacopy=on,redirect_dir=on,verity=require,lowerdir=/run/sealroot/erofs.x::/sysroot/objects::/a\\,b\\:c\\\\d');
  // verity=off says nothing (the kernel default), so the legacy form also works on 6.5 kernels without verity=.
  assert.not.ok(legacyOverlayParams({ ...layers, verity: 'off' }).some((p) => p.key === 'verity'));
});

test('mountinfo: fields and octal-escaped mount points', () => {
  const entries = parseMountinfo('36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n'
    + '45 27 0:39 / /sysroot ro,nodev,relatime - overlay composefs ro,lowerdir+=/run/x,datadir+=/o,verity=require\n');
  assert.is(entries.length, 2);
  assert.equal({ ...entries[0]! }, { id: 36, parent: 35, mountPoint: '/mnt/with space', options: 'rw,noatime', fsType: 'ext3', source: '/dev/root', superOptions: 'rw,errors=continue' });
  assert.is(entries[1]!.fsType, 'overlay');
  assert.is(entries[1]!.source, 'composefs');
});

test('/run/ostree-booted: a{sv} bytes equal what GLib serializes', () => {
  // GLib 2.74 (python3-gi): GLib.Variant('a{sv}', {'composefs': <true>, 'backing-root-device-inode': <(2049, 1234)>})
  const glib = '636f6d706f73656673000000000000000100620a000000006261636b696e672d726f6f742d6465766963652d696e6f6465'
    + '000000000000000108000000000000d20400000000000000287474291a144e';
  const ours = encodeBootedMetadata([
    ['composefs', { type: 'b', value: true }],
    ['backing-root-device-inode', { type: '(tt)', value: [2049n, 1234n] }],
  ]);
  assert.is(ours.toString('hex'), glib);
  assert.is(encodeBootedMetadata([]).length, 0);
});

test.run();
