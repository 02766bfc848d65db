// The built single executable: runs with an empty environment, from a directory without node_modules, with /tmp read-only.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeImage } from '../../src/erofs/writer.ts';
import { VERSION } from '../../src/version.ts';
import { dir, file } from '../unit/erofs-trees.ts';
import { check, requireRoot, requireTools, run, SEALROOT_BIN } from '../helpers/tools.ts';

test('dist/sealroot exists (npm run build)', () => {
  assert.ok(fs.existsSync(SEALROOT_BIN), `${SEALROOT_BIN} is missing: run npm run build`);
});

test('env -i sealroot --version prints the version', () => {
  const out = check('env', ['-i', SEALROOT_BIN, '--version']);
  assert.is(out, `sealroot ${VERSION}\n`);
});

test('the built-in code cache is taken; with other V8 flags it is rejected, said on stderr, and the command still runs', () => {
  const plain = run('env', ['-i', SEALROOT_BIN, '--version']);
  assert.is(plain.status, 0);
  assert.is(plain.stderr, '');
  // --stack-trace-limit is a V8 flag NODE_OPTIONS may carry: it changes the flag hash the cache was made under.
  const otherFlags = run('env', ['-i', 'NODE_OPTIONS=--stack-trace-limit=5', SEALROOT_BIN, '--version']);
  assert.is(otherFlags.status, 0);
  assert.is(otherFlags.stdout, `sealroot ${VERSION}\n`);
  assert.match(otherFlags.stderr, /sealroot: warning: V8 rejected the code cache built into this executable/);
});

test('--help lists the commands; an unknown command exits 2 with one line', () => {
  const help = check(SEALROOT_BIN, ['--help']);
  assert.match(help, /Usage: sealroot COMMAND/);
  assert.match(help, /selftest/);
  const bad = run(SEALROOT_BIN, ['no-such-command']);
  assert.is(bad.status, 2);
  assert.is(bad.stderr, "sealroot: unknown command 'no-such-command' (see sealroot --help)\n");
});

test('output through a pipe is complete: the exit waits for what a full pipe still holds', () => {
  const names: Record<string, ReturnType<typeof file>> = {};
  for (let i = 0; i < 20_000; i++) names[`file-with-a-longish-name-${i}`] = file(`content ${i}`);
  const work = fs.mkdtempSync('/var/tmp/sealroot-pipe-');
  try {
    const image = path.join(work, 'image.cfs');
    fs.writeFileSync(image, writeImage(dir({ usr: dir(names) }), { algorithm: 'sha256' }).image);
    const toFile = path.join(work, 'listing');
    check('sh', ['-c', '"$1" inspect "$2" > "$3"', 'sh', SEALROOT_BIN, image, toFile]);
    const size = fs.statSync(toFile).size;
    assert.ok(size > 1 << 20, `listing of ${size} bytes (more than a pipe holds)`);
    // A slow reader: the pipe is full when sealroot is done writing.
    const piped = check('sh', ['-c', '"$1" inspect "$2" | (sleep 0.3; wc -c)', 'sh', SEALROOT_BIN, image]);
    assert.is(Number(piped.trim()), size);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
});

test('runs from a bare directory with /tmp read-only and no HOME (private mount namespace)', () => {
  requireRoot();
  requireTools('unshare', 'mount');
  const bare = fs.mkdtempSync('/var/tmp/sealroot-bare-');
  try {
    fs.copyFileSync(SEALROOT_BIN, path.join(bare, 'sealroot'));
    fs.chmodSync(path.join(bare, 'sealroot'), 0o755);
    const script = 'mount -t tmpfs -o ro,mode=755 none /tmp && cd "$1" && env -i ./sealroot selftest';
    const result = run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', bare]);
    assert.is(result.status, 0, result.stderr);
    assert.match(result.stdout, /write after seal refused with EPERM/);
  } finally {
    fs.rmSync(bare, { recursive: true, force: true });
  }
});

test('as PID 1 it never exits on its own: a finished command goes to the emergency shell', () => {
  requireRoot();
  requireTools('unshare');
  // An empty stdin: the emergency shell reads EOF and exits, which ends the PID namespace.
  const result = run('unshare', ['--pid', '--fork', '--mount-proc', 'env', '-i', 'SEALROOT_KMSG=0', SEALROOT_BIN, '--version'], { input: '' });
  assert.is(result.stdout, `sealroot ${VERSION}\n`);
  assert.match(result.stderr, /sealroot: sealroot as PID 1 ended with exit status 0\n/);
  assert.match(result.stderr, /sealroot: starting the emergency shell \//);
});

test.run();
