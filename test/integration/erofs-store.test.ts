// The objects store `sealroot mkimage --digest-store` fills: objects named by their fs-verity digest (checked
// with the fsverity tool), placed atomically, reused when present, refused when a same-named object differs.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { check, requireTools, ROOT } from '../helpers/tools.ts';

const NODE = path.join(ROOT, 'node_modules/.bin/node');
const MAIN = path.join(ROOT, 'src/cli/main.ts');
const env = { ...process.env, SEALROOT_KMSG: '0' };

function mkimage(...args: string[]): { status: number | null; stderr: string } {
  const result = spawnSync(NODE, [MAIN, 'mkimage', ...args], { encoding: 'utf8', env });
  return { status: result.status, stderr: result.stderr };
}

function storeFiles(store: string): string[] {
  return (fs.readdirSync(store, { recursive: true }) as string[]).filter((name) => fs.lstatSync(path.join(store, name)).isFile()).sort();
}

let work: string;
test.before(() => {
  requireTools('fsverity');
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-erofs-store-'));
  const source = path.join(work, 'tree');
  fs.mkdirSync(path.join(source, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(source, 'a'), 'a'.repeat(1000));
  fs.writeFileSync(path.join(source, 'sub', 'same-as-a'), 'a'.repeat(1000));
  fs.writeFileSync(path.join(source, 'b'), Buffer.alloc(70_000, 0x62));
  fs.writeFileSync(path.join(source, 'small'), 'inline, not an object');
  fs.writeFileSync(path.join(source, 'empty'), '');
});
test.after(() => {
  if (work !== undefined) fs.rmSync(work, { recursive: true, force: true });
});

test('objects are named XX/<rest> by their fs-verity digest, one per distinct content, mode 0644, nothing else left', () => {
  const store = path.join(work, 'store-1');
  check(NODE, [MAIN, 'mkimage', `--digest-store=${store}`, path.join(work, 'tree'), path.join(work, 'one.cfs')], { env });
  const files = storeFiles(store);
  assert.is(files.length, 2, files.join(', '));
  for (const file of files) {
    const full = path.join(store, file);
    const printed = check('fsverity', ['digest', '--hash-alg=sha256', '--block-size=4096', '--compact', full]).trim();
    assert.is(file, `${printed.slice(0, 2)}/${printed.slice(2)}`);
    assert.is(fs.statSync(full).mode & 0o7777, 0o644);
  }
});

test('a second image into the same store reuses the objects and leaves the store as it was', () => {
  const store = path.join(work, 'store-2');
  check(NODE, [MAIN, 'mkimage', `--digest-store=${store}`, path.join(work, 'tree'), path.join(work, 'two-a.cfs')], { env });
  const before = storeFiles(store).map((file) => [file, fs.statSync(path.join(store, file)).ino]);
  const second = mkimage(`--digest-store=${store}`, path.join(work, 'tree'), path.join(work, 'two-b.cfs'));
  assert.is(second.status, 0, second.stderr);
  assert.match(second.stderr, /0 objects written, 3 reused/);
  assert.equal(storeFiles(store).map((file) => [file, fs.statSync(path.join(store, file)).ino]), before, 'objects were rewritten');
  assert.ok(fs.readFileSync(path.join(work, 'two-a.cfs')).equals(fs.readFileSync(path.join(work, 'two-b.cfs'))));
});

test('an object of the right name but another size is refused, and no temporary file is left behind', () => {
  const store = path.join(work, 'store-3');
  check(NODE, [MAIN, 'mkimage', `--digest-store=${store}`, path.join(work, 'tree'), path.join(work, 'three.cfs')], { env });
  const victim = storeFiles(store)[0]!;
  fs.writeFileSync(path.join(store, victim), 'truncated');
  const again = mkimage(`--digest-store=${store}`, path.join(work, 'tree'), path.join(work, 'three-b.cfs'));
  assert.is(again.status, 1);
  assert.match(again.stderr, new RegExp(`mkimage: an object of this name exists with another size .*${victim.replace('/', '\\/')}`));
  assert.equal(storeFiles(store).filter((file) => file.includes('.tmp')), []);
  assert.not.ok(fs.existsSync(path.join(work, 'three-b.cfs')), 'no image is written when the store is wrong');
});

test.run();
