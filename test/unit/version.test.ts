import * as fs from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { kmsgRecord } from '../../src/log.ts';
import { VERSION } from '../../src/version.ts';

test('VERSION equals package.json version', () => {
  const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  assert.is(VERSION, pkg.version);
});

test('kmsg records carry the level and the sealroot prefix on one line', () => {
  assert.is(kmsgRecord(3, 'load: digest mismatch\n  detail'), '<3>sealroot: load: digest mismatch detail\n');
});

test.run();
