import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { errnoOf, oneLine, StepError, SysError } from '../../src/errors.ts';
import { errnoName, errnoNumber } from '../../src/sys/errno.ts';
import { syscallTable, UnsupportedArchError } from '../../src/sys/arch.ts';

test('errno names follow asm-generic/errno.h', () => {
  assert.is(errnoName(1), 'EPERM');
  assert.is(errnoName(2), 'ENOENT');
  assert.is(errnoName(15), 'ENOTBLK');
  assert.is(errnoName(61), 'ENODATA');
  assert.is(errnoName(95), 'EOPNOTSUPP');
  assert.is(errnoName(133), 'EHWPOISON');
  assert.is(errnoName(9999), 'errno 9999');
  assert.is(errnoNumber('EBUSY'), 16);
  assert.is(errnoNumber('ENOSUCH'), undefined);
});

test('SysError carries the call, errno, code and path in its message', () => {
  const error = new SysError('ioctl', 16, '/dev/loop3');
  assert.is(error.errno, 16);
  assert.is(error.code, 'EBUSY');
  assert.is(error.path, '/dev/loop3');
  assert.is(error.message, 'ioctl /dev/loop3: EBUSY');
});

test('StepError names the step, the path and the errno of its cause', () => {
  const error = new StepError('mount', 'cannot mount the EROFS image', { path: '/dev/loop0', cause: new SysError('fsconfig', 13) });
  assert.is(error.step, 'mount');
  assert.is(error.errno, 13);
  assert.is(error.code, 'EACCES');
  assert.is(error.message, 'mount: cannot mount the EROFS image (/dev/loop0): fsconfig: EACCES');
});

test('errnoOf understands Node fs errors', () => {
  const nodeError = Object.assign(new Error("ENOENT: no such file or directory, open '/x'"), { code: 'ENOENT', syscall: 'open' });
  assert.equal(errnoOf(nodeError), { errno: 2, code: 'ENOENT' });
  assert.equal(errnoOf(new Error('plain')), { errno: undefined, code: undefined });
  const wrapped = new StepError('load', 'cannot open the image', { path: '/x', cause: nodeError });
  assert.is(wrapped.message, 'load: cannot open the image (/x): open: ENOENT');
});

test('oneLine folds multi-line messages', () => {
  assert.is(oneLine(new Error('a\n  b\nc')), 'a b c');
  assert.is(oneLine('text'), 'text');
});

test('syscall tables: x86_64 and aarch64 numbers, a clear error elsewhere', () => {
  assert.is(syscallTable('x64').memfd_create, 319);
  assert.is(syscallTable('arm64').memfd_create, 279);
  assert.is(syscallTable('x64').fsopen, 430);
  assert.is(syscallTable('arm64').fsopen, 430);
  assert.equal([syscallTable('x64').exit_group, syscallTable('arm64').exit_group], [231, 94]);
  assert.throws(() => syscallTable('riscv64'), (error: unknown) => error instanceof UnsupportedArchError && /riscv64/.test((error as Error).message));
});

test.run();
