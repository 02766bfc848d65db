import * as fs from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as os from 'node:os';
import * as path from 'node:path';
import { createLogger, kmsgRecord } from '../../src/log.ts';
import { VERSION } from '../../src/version.ts';

test('VERSION equals package.json version', () => {
  const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  assert.is(VERSION, pkg.version);
});

test('kmsg gets notices, warnings and errors, not info lines (the kernel drops a writer\'s records beyond 10 per 5 s)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-kmsg-'));
  const kmsgPath = path.join(dir, 'kmsg');
  fs.writeFileSync(kmsgPath, '');
  const stderr = process.stderr.write;
  process.stderr.write = (() => true) as typeof process.stderr.write;
  try {
    const log = createLogger({ kmsg: true, kmsgPath });
    for (let i = 0; i < 20; i++) log.info(`step ${i}`);
    log.notice('root ready');
    log.warn('unauthenticated');
    log.error('verify-image: digest mismatch');
  } finally {
    process.stderr.write = stderr;
  }
  assert.is(fs.readFileSync(kmsgPath, 'utf8'), '<5>sealroot: root ready\n<4>sealroot: unauthenticated\n<3>sealroot: verify-image: digest mismatch\n');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('kmsg records carry the level and the sealroot prefix on one line', () => {
  assert.is(kmsgRecord(3, 'load: digest mismatch\n  detail'), '<3>sealroot: load: digest mismatch detail\n');
});

test.run();
