// Output to stdout and stderr with write(2), not through Node's stream objects: the first use of process.stderr
// loads Node's stream modules, ~5 ms natively (measured with --cpu-prof at the boot's first log line, which comes
// before the image's copy can start). A write that fails (a full non-blocking pipe: EAGAIN; a closed fd) is handed
// to the stream, which queues or reports it as it always did; from then on that fd's output all goes through the
// stream, so that nothing overtakes what it holds.
import * as fs from 'node:fs';

type StdioFd = 1 | 2;

const handedToStream = new Set<StdioFd>();

function stream(fd: StdioFd): NodeJS.WriteStream {
  return fd === 1 ? process.stdout : process.stderr;
}

export function writeStdio(fd: StdioFd, text: string): void {
  if (handedToStream.has(fd)) {
    stream(fd).write(text);
    return;
  }
  const bytes = Buffer.from(text);
  let done = 0;
  try {
    while (done < bytes.length) done += fs.writeSync(fd, bytes, done);
  } catch {
    // Not dropped: the stream writes the rest, or reports its failure the way Node reports it for process.stderr.
    handedToStream.add(fd);
    stream(fd).write(bytes.subarray(done));
  }
}

/** Whether everything written is out: nothing waits in a stream (an exit now loses nothing). */
export function stdioFlushed(): boolean {
  return [...handedToStream].every((fd) => stream(fd).writableLength === 0);
}
