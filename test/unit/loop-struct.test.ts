import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeLoopInfo64, encodeLoopConfig, LO_FLAGS_AUTOCLEAR, LO_FLAGS_READ_ONLY } from '../../src/sys/loop.ts';

test('struct loop_config is 304 bytes with fd, block size, flags and name where linux/loop.h puts them', () => {
  const bytes = encodeLoopConfig({ backingFd: 7, blockSize: 4096, flags: LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR, fileName: 'img' });
  assert.is(bytes.length, 304);
  assert.is(bytes.readUInt32LE(0), 7);
  assert.is(bytes.readUInt32LE(4), 4096);
  assert.is(bytes.readUInt32LE(8 + 52), 5);
  assert.is(bytes.subarray(8 + 56, 8 + 59).toString(), 'img');
  assert.is(bytes[8 + 59], 0);
});

test('the backing file name is cut to 63 bytes plus NUL and decodes back', () => {
  const bytes = encodeLoopConfig({ backingFd: 3, blockSize: 512, flags: 0, fileName: 'x'.repeat(100) });
  const info = decodeLoopInfo64(bytes.subarray(8, 8 + 232));
  assert.is(info.fileName, 'x'.repeat(63));
  assert.is(info.flags, 0);
});

test.run();
