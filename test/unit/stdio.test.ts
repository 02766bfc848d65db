// Output through write(2) (src/stdio.ts): complete and in order through a blocking pipe, and through a full
// non-blocking one, where the rest is handed to Node's stream.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const ROOT = path.resolve(import.meta.dirname, '../..');
const NODE = process.execPath;

/** Runs `body` in a child whose stdout is a pipe read 0.3 s late; returns what the reader got. */
function throughSlowPipe(body: string): { status: number | null; output: string; stderr: string } {
  const script = `const { writeStdio, stdioFlushed } = await import(${JSON.stringify(path.join(ROOT, 'src/stdio.ts'))});
const { syscall } = await import(${JSON.stringify(path.join(ROOT, 'src/sys/native.ts'))});
${body}`;
  const result = spawnSync('sh', ['-c', '"$1" --input-type=module -e "$2" | (sleep 0.3; cat)', 'sh', NODE, script], { encoding: 'utf8', maxBuffer: 1 << 26 });
  return { status: result.status, output: result.stdout, stderr: result.stderr };
}

// Three writes of 300 KB each, far more than a pipe holds (64 KiB).
const WRITES = `const chunk = (label) => label + ':' + 'x'.repeat(300_000) + '\\n';
for (const label of ['a', 'b', 'c']) writeStdio(1, chunk(label));
writeStdio(2, stdioFlushed() ? 'flushed\\n' : 'waiting\\n');`;
const EXPECTED = ['a', 'b', 'c'].map((label) => `${label}:${'x'.repeat(300_000)}\n`).join('');

/** Output compared by size and hash: a mismatch prints two lines, not 900 KB. */
function sameOutput(actual: string): void {
  const digest = (text: string) => createHash('sha256').update(text).digest('hex');
  assert.equal([actual.length, digest(actual)], [EXPECTED.length, digest(EXPECTED)], 'the reader got every byte, in order');
}

test('a blocking pipe: every write goes out whole, in order, with nothing left in a stream', () => {
  const result = throughSlowPipe(WRITES);
  assert.is(result.status, 0, result.stderr);
  sameOutput(result.output);
  assert.is(result.stderr, 'flushed\n');
});

test('a full non-blocking pipe: the rest goes through the stream, in order, and stdioFlushed() says it is not out yet', () => {
  // F_SETFL O_NONBLOCK on the pipe (fcntl 4, 0o4000): write(2) fails with EAGAIN once the pipe's 64 KiB are full.
  const result = throughSlowPipe(`syscall('fcntl', [1, 4, 0o4000]);\n${WRITES}`);
  assert.is(result.status, 0, result.stderr);
  sameOutput(result.output);
  assert.is(result.stderr, 'waiting\n', 'the stream still held output when the writes returned');
});

test.run();
