// The validator's view of the sealed image: the file's bytes, all of them, or an error.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { imageView } from '../../src/boot/image-reader.ts';

test('the view equals the file; a file shorter than the size given is an error, not a short view', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-reader-'));
  const file = path.join(dir, 'image');
  const content = randomBytes(300_000 + 123);
  fs.writeFileSync(file, content);
  const fd = fs.openSync(file, 'r');
  try {
    const view = imageView(fd, content.length, file);
    assert.is(view.length, content.length);
    assert.ok(Buffer.from(view.buffer, view.byteOffset, view.byteLength).equals(content));
    assert.throws(() => imageView(fd, content.length + 4096, file), /short read of the image memfd: 300123 of 304219 bytes/);
  } finally {
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
