// The chunked reader the validator reads the sealed image through: every read equals the file's bytes.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chunkedReader } from '../../src/boot/image-reader.ts';

test('reads within, across and at the end of chunks equal the bytes; out-of-range reads throw', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-reader-'));
  const file = path.join(dir, 'image');
  const content = randomBytes(300_000 + 123);
  fs.writeFileSync(file, content);
  const fd = fs.openSync(file, 'r');
  try {
    const read = chunkedReader(fd, content.length);
    const cases: [number, number][] = [[0, 0], [0, 1], [0, 65536], [65535, 2], [65536, 65536], [1000, 200_000], [content.length - 7, 7], [content.length, 0]];
    let seed = 7;
    for (let i = 0; i < 500; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const offset = seed % content.length;
      cases.push([offset, (seed >> 3) % Math.min(150_000, content.length - offset + 1)]);
    }
    for (const [offset, length] of cases) {
      const got = read(offset, length);
      assert.is(got.length, length);
      assert.ok(got.equals(content.subarray(offset, offset + length)), `offset ${offset} length ${length}`);
    }
    assert.throws(() => read(content.length - 1, 2), (e: unknown) => e instanceof RangeError);
    assert.throws(() => read(-1, 1), (e: unknown) => e instanceof RangeError);
    assert.throws(() => read(0.5, 1), (e: unknown) => e instanceof RangeError);
  } finally {
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
