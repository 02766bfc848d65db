// `sealroot digest` and `sealroot load` as the built single executable runs them (worker threads included):
// digest's stdout and exit status are fsverity digest's; load prints the digest, the seals and the time.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { check, requireTools, run, SEALROOT_BIN } from '../helpers/tools.ts';

requireTools('fsverity', 'zstd');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-load-cli-'));
const files = {
  empty: Buffer.alloc(0),
  hello: Buffer.from('hello world'),
  odd: crypto.randomBytes(129 * 4096 + 7),
  // Over the 16 MiB threshold: hashed on worker threads inside the executable.
  large: crypto.randomBytes((20 << 20) + 4097),
};
const paths = Object.fromEntries(Object.entries(files).map(([name, data]) => {
  const target = path.join(dir, name);
  fs.writeFileSync(target, data);
  return [name, target];
})) as Record<keyof typeof files, string>;
const env = {};

test('digest prints what fsverity digest prints, for several files and parameter sets', () => {
  assert.ok(fs.existsSync(SEALROOT_BIN), `${SEALROOT_BIN} is missing: npm run build`);
  const all = Object.values(paths);
  for (const options of [[], ['--hash-alg=sha512'], ['--block-size=1024', '--salt=deadbeef'], ['--compact', '--hash-alg=sha512', '--block-size=65536']]) {
    const ours = run(SEALROOT_BIN, ['digest', ...options, ...all], { env });
    const theirs = run('fsverity', ['digest', ...options, ...all]);
    assert.is(ours.status, 0, ours.stderr);
    assert.is(ours.stdout, theirs.stdout, options.join(' '));
  }
  assert.match(check(SEALROOT_BIN, ['digest', paths.hello], { env }), /^sha256:1e2eaa4202d750a41174ee454970b92c1bc2f925b1e35076d8c7d5f56362ba64 /);
  // Like fsverity-utils, st_size bytes are hashed: a pipe (size 0) and /dev/null give the empty file's digest.
  for (const target of ['/dev/stdin', '/dev/null']) {
    const piped = (tool: string) => run('sh', ['-c', `printf 'hello world' | "$0" digest "$1"`, tool, target]);
    const [ours, theirs] = [piped(SEALROOT_BIN), piped('fsverity')];
    assert.is(ours.status, 0, ours.stderr);
    assert.is(ours.stdout, theirs.stdout, target);
  }
});

test('digest exit statuses and partial output match fsverity digest', () => {
  const cases = [
    [paths.hello, path.join(dir, 'missing'), paths.odd], // stops at the missing file: 1, the first printed
    [dir], // a directory: 1
    ['--block-size=3000', paths.hello], // usage: 2
    ['--hash-alg=sha1', paths.hello], // usage: 2
    ['--salt=xyz', paths.hello], // usage: 2
    ['--block-size=64', '--hash-alg=sha512', paths.hello], // too small: 1
    ['--salt=' + '00'.repeat(33), paths.hello], // salt too long: 1
    [], // no file: 2
  ];
  for (const args of cases) {
    const ours = run(SEALROOT_BIN, ['digest', ...args], { env });
    const theirs = run('fsverity', ['digest', ...args]);
    assert.is(ours.status, theirs.status, `exit status for ${args.join(' ')}`);
    assert.is(ours.stdout, theirs.stdout, `stdout for ${args.join(' ')}`);
    if (ours.status !== 0) assert.ok(ours.stderr.trim().split('\n').length === 1, `one line on stderr: ${ours.stderr}`);
  }
});

test('load: exit 0 with digest, seals, method and time; plain and zstd', () => {
  const expected = check('fsverity', ['digest', paths.large]).split(' ')[0]!;
  const plain = run(SEALROOT_BIN, ['load', `--expect=${expected}`, paths.large], { env });
  assert.is(plain.status, 0, plain.stderr);
  assert.match(plain.stdout, new RegExp(`^${expected} ${paths.large}\nsize: ${files.large.length} bytes\nmethod: userspace\nseals: SEAL\\|SHRINK\\|GROW\\|WRITE\nmemory: hugetlb \\(never swapped\\)\ntime: [0-9.]+ ms\n$`));
  assert.match(plain.stderr, /userspace fs-verity \(the source file has no fs-verity\)/);
  const swappable = run(SEALROOT_BIN, ['load', `--expect=${expected}`, '--unswappable=off', paths.large], { env });
  assert.is(swappable.status, 0, swappable.stderr);
  assert.match(swappable.stdout, /\nmemory: shmem \(swappable\)\n/);
  check('zstd', ['-q', '-f', paths.odd, '-o', `${paths.odd}.zst`]);
  const oddDigest = check('fsverity', ['digest', '--hash-alg=sha512', paths.odd]).split(' ')[0]!;
  const zst = run(SEALROOT_BIN, ['load', '--expect', oddDigest, '--max-size', '1M', `${paths.odd}.zst`], { env });
  assert.is(zst.status, 0, zst.stderr);
  assert.match(zst.stdout, /\(decompressed\)/);
});

test('load: one line and exit 1 on a refusal, exit 2 on a usage error', () => {
  const expected = check('fsverity', ['digest', paths.odd]).split(' ')[0]!;
  const wrong = run(SEALROOT_BIN, ['load', `--expect=${expected}`, paths.large], { env });
  assert.is(wrong.status, 1);
  assert.is(wrong.stdout, '');
  assert.match(wrong.stderr, /sealroot: verify-image: digest mismatch: the image is sha256:[0-9a-f]{64}, the trusted digest is sha256:[0-9a-f]{64} \(.*large\)\n$/);
  const tooBig = run(SEALROOT_BIN, ['load', `--expect=${expected}`, '--max-size=1M', paths.large], { env });
  assert.is(tooBig.status, 1);
  assert.match(tooBig.stderr, /over the limit of 1048576/);
  for (const args of [['load', paths.odd], ['load', '--expect=sha256:00', paths.odd], ['load', `--expect=${expected}`], ['load', `--expect=${expected}`, '--max-size=lots', paths.odd], ['load', `--expect=${expected}`, '--unswappable=no', paths.odd]]) {
    assert.is(run(SEALROOT_BIN, args, { env }).status, 2, args.join(' '));
  }
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
test.run();
