import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CmdlineError, kargPresent, kargValue, parseCmdline } from '../../src/config/cmdline.ts';
import { isWhitespace } from '../../src/text/chars.ts';

test('splits on whitespace, keeps flags and key=value, strips quotes as the kernel does', () => {
  const cmdline = parseCmdline('BOOT_IMAGE=/vmlinuz root=/dev/vda  ro\tquiet foo="a b" "bar=c d" ostree=/ostree/boot.1/os/x/0\n');
  assert.equal(cmdline.params, [
    { key: 'BOOT_IMAGE', value: '/vmlinuz' }, { key: 'root', value: '/dev/vda' }, { key: 'ro', value: undefined },
    { key: 'quiet', value: undefined }, { key: 'foo', value: 'a b' }, { key: 'bar', value: 'c d' },
    { key: 'ostree', value: '/ostree/boot.1/os/x/0' },
  ]);
  assert.equal(cmdline.initArgs, []);
  assert.is(kargValue(cmdline, 'foo'), 'a b');
  assert.ok(kargPresent(cmdline, 'ro'));
  assert.not.ok(kargPresent(cmdline, 'rw'));
  assert.is(kargValue(cmdline, 'missing'), undefined);
});

test('arguments after -- go to init and are not kernel parameters', () => {
  const cmdline = parseCmdline('init=/bin/sh composefs=abc -- -c "echo composefs=x" single');
  assert.equal(cmdline.initArgs, ['-c', 'echo composefs=x', 'single']);
  assert.is(kargValue(cmdline, 'composefs'), 'abc');
  assert.is(kargValue(cmdline, 'init'), '/bin/sh');
});

test('a key repeated with the same value is fine; with different values it is refused, naming the key', () => {
  assert.is(kargValue(parseCmdline('ostree=/a ostree=/a'), 'ostree'), '/a');
  assert.throws(() => kargValue(parseCmdline('composefs=aa composefs=bb'), 'composefs'),
    (e: unknown) => e instanceof CmdlineError && e.key === 'composefs' && /more than once/.test(e.message));
});

test('the separator test is exactly /\\s/, for every UTF-16 code unit', () => {
  for (let code = 0; code <= 0xffff; code++) {
    const c = String.fromCharCode(code);
    if (isWhitespace(c) !== /\s/.test(c)) assert.unreachable(`U+${code.toString(16)}: ${isWhitespace(c)}`);
  }
  assert.equal(parseCmdline('a=1\u00a0b=2\u2028c d').params.map((param) => param.key), ['a', 'b', 'c', 'd']);
});

test('empty and whitespace-only lines give no parameters', () => {
  assert.equal(parseCmdline('').params, []);
  assert.equal(parseCmdline('  \n').params, []);
  assert.equal(parseCmdline('a= b').params, [{ key: 'a', value: '' }, { key: 'b', value: undefined }]);
});

test.run();
