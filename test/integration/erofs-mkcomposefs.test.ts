// `sealroot mkimage` against libcomposefs' mkcomposefs on the same trees: byte-identical images, the same
// image digest and objects; `sealroot inspect` against composefs-info dump and an independent listing.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { check, requireRoot, requireTools, ROOT } from '../helpers/tools.ts';
import { makeFixture } from './erofs-fixture.ts';
import { listSource, normalizeDump } from './erofs-listing.ts';
import { composefsTools, runTool } from './erofs-tools.ts';

const NODE = path.join(ROOT, 'node_modules/.bin/node');
const MAIN = path.join(ROOT, 'src/cli/main.ts');
const sealroot = (...args: string[]): string => check(NODE, [MAIN, ...args], { env: { ...process.env, SEALROOT_KMSG: '0' } });

let work: string;
test.before(() => {
  requireRoot();
  requireTools('fsverity', 'apt-get', 'dpkg-deb', 'cmp');
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-erofs-'));
});
test.after(() => {
  if (work !== undefined) fs.rmSync(work, { recursive: true, force: true });
});

function listFiles(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((name) => fs.statSync(path.join(dir, name)).isFile()).sort();
}

for (const variant of [
  { name: 'varied tree with an ACL', options: { acl: true }, args: [] },
  { name: 'tree with whiteouts (format version 1) and a pre-1970 mtime', options: { whiteouts: true, before1970: true, manyEntries: 300, depth: 5 }, args: [] },
  { name: 'varied tree, --min-version=1 (composefs-rs V1)', options: { manyEntries: 500, depth: 8 }, args: ['--min-version=1'] },
  { name: 'whiteouts, --use-epoch --skip-devices --user-xattrs', options: { whiteouts: true, acl: true, manyEntries: 100, depth: 3 }, args: ['--use-epoch', '--skip-devices', '--user-xattrs'] },
  { name: 'varied tree, --skip-xattrs', options: { acl: true, manyEntries: 100, depth: 3 }, args: ['--skip-xattrs'] },
]) {
  test(`${variant.name}: mkimage writes the bytes mkcomposefs writes, the same digest, the same objects`, () => {
    const tools = composefsTools();
    const dir = fs.mkdtempSync(path.join(work, 'case-'));
    const source = path.join(dir, 'tree');
    makeFixture(source, variant.options);
    const theirs = path.join(dir, 'theirs.cfs');
    const ours = path.join(dir, 'ours.cfs');
    const theirDigest = runTool(tools.mkcomposefs, [...variant.args, '--print-digest', `--digest-store=${path.join(dir, 'objects-theirs')}`, source, theirs]);
    const ourDigest = sealroot('mkimage', ...variant.args, '--print-digest', `--digest-store=${path.join(dir, 'objects-ours')}`, source, ours);
    const a = fs.readFileSync(theirs);
    const b = fs.readFileSync(ours);
    assert.is(b.length, a.length, 'image sizes differ');
    const firstDifference = a.findIndex((byte, i) => byte !== b[i]);
    assert.is(firstDifference, -1, `images differ first at byte ${firstDifference} (${tools.version})`);
    // --print-digest prints what mkcomposefs prints (the bare hex and a newline), byte for byte; so does -only.
    assert.match(theirDigest, /^[0-9a-f]{64}\n$/);
    assert.is(ourDigest, theirDigest);
    assert.is(sealroot('mkimage', ...variant.args, '--print-digest-only', source), runTool(tools.mkcomposefs, [...variant.args, '--print-digest-only', source]), '--print-digest-only');
    // sealroot's own digest commands keep the prefixed form, of the same digest.
    assert.is(sealroot('digest', ours), `sha256:${theirDigest.trim()} ${ours}\n`);
    const objects = listFiles(path.join(dir, 'objects-theirs'));
    assert.ok(objects.length > 10, `only ${objects.length} objects`);
    assert.equal(listFiles(path.join(dir, 'objects-ours')), objects);
    for (const object of objects) {
      assert.ok(fs.readFileSync(path.join(dir, 'objects-ours', object)).equals(fs.readFileSync(path.join(dir, 'objects-theirs', object))), object);
    }
    // The listing: ours from our image equals composefs-info's from theirs.
    assert.is(sealroot('inspect', ours), runTool(tools.composefsInfo, ['dump', theirs]));
  });
}

test('--hash-alg sha512 --print-digest prints the bare 128-digit hex that sealroot digest --hash-alg=sha512 prints with its prefix', () => {
  const dir = fs.mkdtempSync(path.join(work, 'sha512-'));
  const source = path.join(dir, 'tree');
  makeFixture(source, { manyEntries: 20, depth: 2 });
  const image = path.join(dir, 'image.cfs');
  const printed = sealroot('mkimage', '--hash-alg', 'sha512', '--print-digest', source, image);
  assert.match(printed, /^[0-9a-f]{128}\n$/);
  assert.is(sealroot('digest', '--hash-alg=sha512', image), `sha512:${printed.trim()} ${image}\n`);
  assert.is(sealroot('mkimage', '--hash-alg', 'sha512', '--print-digest-only', source), printed);
  // What mkimage prints is taken as it is by the commands that take a digest (the length names the algorithm).
  assert.match(sealroot('load', `--expect=${printed.trim()}`, image), new RegExp(`^sha512:${printed.trim()} `));
});

test('inspect lists what an independent walk of the source tree lists (sizes, modes, owners, times, digests, xattrs, hard links)', () => {
  const dir = fs.mkdtempSync(path.join(work, 'listing-'));
  const source = path.join(dir, 'tree');
  makeFixture(source, { hardlinks: true, acl: true });
  const image = path.join(dir, 'image.cfs');
  sealroot('mkimage', source, image);
  const expected = listSource(source);
  const actual = normalizeDump(sealroot('inspect', image));
  assert.is(actual.length, expected.length, 'number of lines');
  for (let i = 0; i < expected.length; i++) assert.is(actual[i], expected[i], `line ${i + 1}`);
});

test('with hard links, the image equals what mkcomposefs --from-file makes of its own dump; --no-hardlinks equals mkcomposefs of the directory', () => {
  const tools = composefsTools();
  const dir = fs.mkdtempSync(path.join(work, 'hardlinks-'));
  const source = path.join(dir, 'tree');
  makeFixture(source, { hardlinks: true, manyEntries: 100, depth: 4 });
  const ours = path.join(dir, 'ours.cfs');
  sealroot('mkimage', source, ours);
  const dump = sealroot('inspect', ours);
  assert.match(dump, / @100644 3 0 0 0 [0-9.]+ \/deep\/third-name /);
  assert.is(runTool(tools.composefsInfo, ['dump', ours]), dump);
  fs.writeFileSync(path.join(dir, 'dump'), dump);
  const theirs = path.join(dir, 'theirs.cfs');
  runTool(tools.mkcomposefs, ['--from-file', path.join(dir, 'dump'), theirs]);
  assert.ok(fs.readFileSync(ours).equals(fs.readFileSync(theirs)), 'images differ');
  // --no-hardlinks: what mkcomposefs 1.0.8 makes of the directory itself (each name its own inode).
  const split = path.join(dir, 'split.cfs');
  const theirsFromDir = path.join(dir, 'theirs-dir.cfs');
  sealroot('mkimage', '--no-hardlinks', source, split);
  runTool(tools.mkcomposefs, [source, theirsFromDir]);
  assert.ok(fs.readFileSync(split).equals(fs.readFileSync(theirsFromDir)), '--no-hardlinks image differs from mkcomposefs of the directory');
  assert.not.ok(fs.readFileSync(split).equals(fs.readFileSync(ours)));
});

test('dump edge cases (sizes past 4 GiB and 2^43, ids past 2^16 and 2^31, nlink 70000, devices, escapes): mkimage --from-file = mkcomposefs --from-file', () => {
  const tools = composefsTools();
  const dir = fs.mkdtempSync(path.join(work, 'dump-'));
  const digest = (n: number): string => createHash('sha256').update(String(n)).digest('hex');
  const object = (n: number): string => `${digest(n).slice(0, 2)}/${digest(n).slice(2)}`;
  const lines = [
    '/ 4096 40755 4 0 0 0 1600000000.5 - - - security.selinux=system_u:object_r:root_t:s0',
    `/five-gib 5368709120 100644 1 0 0 0 1600000001.0 ${object(1)} - ${digest(1)}`,
    `/huge 35184372088833 100644 1 0 0 0 1600000002.0 ${object(2)} - ${digest(2)}`,
    `/many-links 70000 100644 70000 0 0 0 1600000000.5 ${object(3)} - ${digest(3)}`,
    `/big-ids 100 100600 1 4000000000 2200000000 0 1600000000.5 ${object(4)} - ${digest(4)} user.x=1`,
    '/no-digest 1000 100644 1 0 0 0 1600000000.5 - - -',
    `/inline-100 100 100644 1 0 0 0 1600000000.5 - ${'c'.repeat(100)} -`,
    String.raw`/esc\x20aped\n 3 100644 1 0 0 0 1600000000.5 - a\x3db - user.k\x3d=v\x20\x00\xff trusted.overlay.opaque=y`,
    '/dev 0 20600 1 0 6 4294967295 1600000000.5 - - -',
    '/blk 0 60660 1 0 6 2049 1600000000.5 - - -',
    '/d 4096 40700 2 0 0 0 1600000003.999999999 - - - trusted.overlay.redirect=/x',
    '/d/gone 0 20000 1 0 0 0 1600000000.5 - - -',
    `/d/link 100 @100600 1 4000000000 2200000000 0 1600000000.5 /big-ids - ${digest(4)}`,
    '/d/sym 4000 120777 1 0 0 0 1600000000.5 ' + 's'.repeat(4000) + ' - - trusted.x=' + 'y'.repeat(200),
    '/z 0 40755 2 0 0 0 1600000000.5 - - -',
  ];
  const dumpFile = path.join(dir, 'dump');
  fs.writeFileSync(dumpFile, `${lines.join('\n')}\n`);
  const theirs = path.join(dir, 'theirs.cfs');
  const ours = path.join(dir, 'ours.cfs');
  runTool(tools.mkcomposefs, ['--from-file', dumpFile, theirs]);
  sealroot('mkimage', '--from-file', dumpFile, ours);
  const a = fs.readFileSync(theirs);
  const b = fs.readFileSync(ours);
  assert.is(b.length, a.length, 'image sizes differ');
  assert.is(a.findIndex((byte, i) => byte !== b[i]), -1, 'images differ');
  assert.is(sealroot('inspect', ours), runTool(tools.composefsInfo, ['dump', theirs]));
});

test('mkimage is reproducible: same tree, same bytes, whatever the run time and creation order', () => {
  const dir = fs.mkdtempSync(path.join(work, 'repro-'));
  makeFixture(path.join(dir, 'one'), { manyEntries: 200, depth: 3, hardlinks: true });
  makeFixture(path.join(dir, 'two'), { manyEntries: 200, depth: 3, hardlinks: true });
  sealroot('mkimage', path.join(dir, 'one'), path.join(dir, 'one.cfs'));
  sealroot('mkimage', path.join(dir, 'two'), path.join(dir, 'two.cfs'));
  sealroot('mkimage', path.join(dir, 'one'), path.join(dir, 'one-again.cfs'));
  const one = fs.readFileSync(path.join(dir, 'one.cfs'));
  assert.ok(one.equals(fs.readFileSync(path.join(dir, 'one-again.cfs'))), 'two runs on one tree differ');
  assert.ok(one.equals(fs.readFileSync(path.join(dir, 'two.cfs'))), 'two trees made alike differ');
});

test.run();
