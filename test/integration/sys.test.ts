// The syscall layer against the host kernel: memfd sealing and loop devices.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SysError } from '../../src/errors.ts';
import { AT_FDCWD, isAbsentAt, makeDirAt, O_DIRECTORY, O_PATH, O_RDONLY, openAt } from '../../src/sys/files.ts';
import { errnoNumber } from '../../src/sys/errno.ts';
import { syscallOrErrno } from '../../src/sys/native.ts';
import { measureVerity } from '../../src/sys/verity.ts';
import { closeFd, preadFully, writeFully } from '../../src/sys/io.ts';
import {
  LO_FLAGS_AUTOCLEAR, LO_FLAGS_READ_ONLY, loopClear, loopConfigure, loopGetFree, loopGetStatus,
} from '../../src/sys/loop.ts';
import { addSeals, F_SEAL_WRITE, getSeals, IMAGE_SEALS, memfdCreate, MFD_CLOEXEC } from '../../src/sys/memfd.ts';
import { exceptionsDuring } from '../helpers/exceptions.ts';
import { requireRoot } from '../helpers/tools.ts';

function sealedMemfd(content: Buffer): number {
  const fd = memfdCreate('sealroot-test');
  writeFully(fd, content);
  addSeals(fd, IMAGE_SEALS);
  return fd;
}

test('a sealed memfd keeps its bytes: seals read back, writes and truncation fail with EPERM', () => {
  const content = Buffer.alloc(8192, 0xab);
  const fd = sealedMemfd(content);
  try {
    assert.is(getSeals(fd), IMAGE_SEALS);
    assert.throws(() => writeFully(fd, Buffer.from('x')), (e: unknown) => e instanceof SysError && e.code === 'EPERM');
    assert.throws(() => fs.ftruncateSync(fd, 0), (e: unknown) => (e as NodeJS.ErrnoException).code === 'EPERM');
    assert.throws(() => addSeals(fd, F_SEAL_WRITE), (e: unknown) => e instanceof SysError && e.code === 'EPERM');
    const back = Buffer.alloc(content.length);
    assert.is(preadFully(fd, back, 0), content.length);
    assert.ok(back.equals(content));
  } finally {
    closeFd(fd);
  }
});

test('a memfd made without MFD_ALLOW_SEALING refuses seals with EPERM, and the error names fcntl', () => {
  const fd = memfdCreate('sealroot-test-unsealable', MFD_CLOEXEC);
  try {
    assert.throws(() => addSeals(fd, IMAGE_SEALS), (e: unknown) => e instanceof SysError && e.syscall === 'fcntl' && e.code === 'EPERM');
  } finally {
    closeFd(fd);
  }
});

test('a loop device attaches read-only to a sealed memfd, serves its bytes, and detaches', () => {
  requireRoot();
  const content = Buffer.alloc(1 << 20);
  for (let i = 0; i < content.length; i += 4096) content.writeUInt32LE(i, i);
  const memfd = sealedMemfd(content);
  const number = loopGetFree();
  const device = `/dev/loop${number}`;
  const loopFd = openAt(AT_FDCWD, device, O_RDONLY);
  try {
    loopConfigure(loopFd, { backingFd: memfd, blockSize: 4096, flags: LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR, fileName: 'sealroot-test' }, device);
    const status = loopGetStatus(loopFd, device);
    assert.is(status.flags & (LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR), LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR);
    assert.is(status.fileName, 'sealroot-test');
    assert.is(fs.readFileSync(`/sys/block/loop${number}/ro`, 'utf8').trim(), '1');
    const back = Buffer.alloc(content.length);
    assert.is(preadFully(loopFd, back, 0, device), content.length);
    assert.ok(back.equals(content));
    // A second LOOP_CONFIGURE on a bound device is refused: what the mount code retries on.
    assert.throws(
      () => loopConfigure(loopFd, { backingFd: memfd, blockSize: 4096, flags: LO_FLAGS_READ_ONLY, fileName: 'x' }, device),
      (e: unknown) => e instanceof SysError && e.code === 'EBUSY' && e.path === device,
    );
    loopClear(loopFd, device);
  } finally {
    closeFd(loopFd);
    closeFd(memfd);
  }
  // LOOP_CLR_FD with autoclear detaches once the last opener is gone.
  const deadline = Date.now() + 5000;
  while (fs.existsSync(`/sys/block/loop${number}/loop/backing_file`) && Date.now() < deadline) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  assert.not.ok(fs.existsSync(`/sys/block/loop${number}/loop/backing_file`), `loop${number} is still bound`);
});

test('opening a missing device fails with a SysError naming openat, the path and ENOENT', () => {
  assert.throws(() => loopGetFree('/nonexistent/loop-control'), (e: unknown) =>
    e instanceof SysError && e.syscall === 'openat' && e.code === 'ENOENT' && e.path === '/nonexistent/loop-control');
});

test('expected failures without an exception: -errno from syscallOrErrno, makeDirAt, isAbsentAt, measureVerity', () => {
  // The detector itself sees an exception that is caught at once.
  assert.equal(exceptionsDuring(() => {
    try {
      throw new Error('seen');
    } catch {
      return 0;
    }
  }).thrown, ['Error: seen']);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-errno-'));
  fs.writeFileSync(path.join(dir, 'file'), 'x');
  const dirFd = openAt(AT_FDCWD, dir, O_PATH | O_DIRECTORY);
  const fd = openAt(AT_FDCWD, path.join(dir, 'file'), O_RDONLY);
  try {
    const { result, thrown } = exceptionsDuring(() => [
      syscallOrErrno('openat', [AT_FDCWD, path.join(dir, 'missing'), O_PATH, 0]), makeDirAt(dirFd, 'made'), makeDirAt(dirFd, 'made'),
      isAbsentAt(dirFd, 'missing', 0), isAbsentAt(dirFd, 'made', 0), isAbsentAt(dirFd, 'file/x', 0), measureVerity(fd),
    ]);
    // The host's filesystems here have no fs-verity: the file measures as undefined.
    assert.equal(result, [-errnoNumber('ENOENT')!, 'made', 'exists', true, false, false, undefined]);
    assert.equal(thrown, [], 'no exception was thrown, caught or not');
  } finally {
    closeFd(fd);
    closeFd(dirFd);
  }
  // Other failures still throw a SysError naming the call and the path.
  assert.throws(() => makeDirAt(AT_FDCWD, path.join(dir, 'file/x')), (e: unknown) => e instanceof SysError && e.syscall === 'mkdirat' && e.code === 'ENOTDIR');
  assert.ok(fs.statSync(path.join(dir, 'made')).isDirectory());
  fs.rmSync(dir, { recursive: true, force: true });
});

test.run();
