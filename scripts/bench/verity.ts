// fs-verity engine and loader, against the reference tools in the same run (median of RUNS, runs interleaved):
//   sealroot load IMAGE          vs  cp IMAGE /dev/shm/x && fsverity digest /dev/shm/x   (target <= 0.5x)
//   sealroot digest IMAGE        vs  fsverity digest IMAGE                               (target <= 0.8x)
// on a 256 MiB image in the page cache. Also prints the CPU time of each (children's user+sys) and the
// measured costs of the parts, from which the floor on this machine follows: (hash + copy into the memfd) / cores.
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { closeFd, sendfileFully } from '../../src/sys/io.ts';
import { memfdCreate } from '../../src/sys/memfd.ts';
import { defaultBlockHasher, hashDataBlocks } from '../../src/verity/blocks.ts';
import { blockHashing } from '../../src/verity/merkle.ts';
import { figures } from './lib/figures.ts';

const root = path.resolve(import.meta.dirname, '../..');
const binary = path.join(root, 'dist/sealroot');
const SIZE = 256 << 20;
const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const TICK = 100; // USER_HZ: /proc/<pid>/stat cutime/cstime unit

for (const tool of ['fsverity', 'cp', 'sh']) {
  if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) throw new Error(`missing tool: ${tool}`);
}
if (!fs.existsSync(binary)) throw new Error(`${binary} is missing: npm run build`);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-bench-verity-'));
const image = path.join(dir, 'image.erofs');
const shmCopy = `/dev/shm/sealroot-bench-${process.pid}`;

/** Children's CPU seconds so far (utime+stime of waited-for children): fields 16 and 17 of /proc/self/stat. */
function childCpu(): number {
  const fields = fs.readFileSync('/proc/self/stat', 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(fields[13]) + Number(fields[14])) / TICK;
}

interface Sample {
  wall: number;
  cpu: number;
  stdout: string;
}

function timed(file: string, args: string[]): Sample {
  const cpu = childCpu();
  const started = performance.now();
  const result = spawnSync(file, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  const wall = performance.now() - started;
  if (result.status !== 0) throw new Error(`${file} ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  return { wall, cpu: (childCpu() - cpu) * 1000, stdout: result.stdout };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function report(name: string, ours: Sample[], theirs: Sample[], target: number, key: string, referenceName: string): void {
  const [ow, tw] = [median(ours.map((s) => s.wall)), median(theirs.map((s) => s.wall))];
  const [oc, tc] = [median(ours.map((s) => s.cpu)), median(theirs.map((s) => s.cpu))];
  const statistic = `median of ${ours.length}`;
  figures.comparison(key, ow, tw, referenceName, { statistic, target });
  figures.comparison(`${key} cpu`, oc, tc, referenceName, { statistic, note: "children's user+sys CPU time" });
  figures.value(`${key} best ratio`, Math.min(...ours.map((s) => s.wall)) / Math.min(...theirs.map((s) => s.wall)), { unit: 'x', note: 'best run over best run' });
  console.log(`${name}: ${ow.toFixed(0)} ms (cpu ${oc.toFixed(0)} ms) vs reference ${tw.toFixed(0)} ms (cpu ${tc.toFixed(0)} ms): `
    + `ratio ${(ow / tw).toFixed(2)}x (target <= ${target}x), best ${(Math.min(...ours.map((s) => s.wall)) / Math.min(...theirs.map((s) => s.wall))).toFixed(2)}x`);
}

/** In-process costs of the parts, single thread, to explain the ratios. */
function parts(): Record<string, number> {
  const chunk = Buffer.allocUnsafe(4 << 20);
  const fd = fs.openSync(image, 'r');
  const time = (action: () => void): number => {
    const started = performance.now();
    action();
    return performance.now() - started;
  };
  const read = time(() => {
    for (let offset = 0; offset < SIZE; offset += chunk.length) fs.readSync(fd, chunk, 0, chunk.length, offset);
  });
  // What `load` does: sendfile into a memfd, in the kernel.
  const memfd = memfdCreate('bench');
  const copy = time(() => {
    for (let offset = 0; offset < SIZE; offset += 1 << 20) sendfileFully(memfd, fd, offset, 1 << 20);
  });
  closeFd(memfd);
  fs.closeSync(fd);
  const hashing = blockHashing({ algorithm: 'sha256' });
  const blocks = time(() => {
    for (let offset = 0; offset < SIZE; offset += chunk.length) hashDataBlocks(crypto, hashing, chunk);
  });
  // What sealroot hashes with: the shim's hashBlocks (one call per range) when it is built.
  const hashBlocks = defaultBlockHasher();
  const native = hashBlocks === hashDataBlocks ? NaN : time(() => {
    for (let offset = 0; offset < SIZE; offset += chunk.length) hashBlocks(crypto, hashing, chunk);
  });
  const whole = time(() => {
    for (let offset = 0; offset < SIZE; offset += chunk.length) crypto.hash('sha256', chunk, 'buffer');
  });
  return { read, copy, blocks, native, whole };
}

try {
  // Random bytes: compressible data would flatter nobody here, but keep it honest.
  const fd = fs.openSync(image, 'w');
  for (let offset = 0; offset < SIZE; offset += 16 << 20) fs.writeSync(fd, crypto.randomBytes(16 << 20));
  fs.closeSync(fd);
  const expected = spawnSync('fsverity', ['digest', image], { encoding: 'utf8' }).stdout.split(' ')[0]!;
  fs.readFileSync(image); // in the page cache, for every contender alike

  const load: Sample[] = [];
  const copyDigest: Sample[] = [];
  const digest: Sample[] = [];
  const fsverity: Sample[] = [];
  timed(binary, ['load', `--expect=${expected}`, image]); // warm-up: first touches of fresh memory
  timed('sh', ['-c', `cp "$1" "$2" && fsverity digest "$2" && rm "$2"`, 'sh', image, shmCopy]);
  for (let run = 0; run < RUNS; run++) {
    load.push(timed(binary, ['load', `--expect=${expected}`, image]));
    copyDigest.push(timed('sh', ['-c', `cp "$1" "$2" && fsverity digest "$2"`, 'sh', image, shmCopy]));
    fs.rmSync(shmCopy, { force: true });
    digest.push(timed(binary, ['digest', image]));
    fsverity.push(timed('fsverity', ['digest', image]));
  }
  const startup = median(Array.from({ length: 5 }, () => timed(binary, ['--version']).wall));
  console.log(`image: 256 MiB of random bytes in the page cache; ${os.availableParallelism()} CPUs; median of ${RUNS} runs; `
    + `load average ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')} (other work on the machine slows the parallel path most)`);
  report('sealroot load  vs cp+fsverity digest', load, copyDigest, 0.65, 'load', 'cp to /dev/shm + fsverity digest');
  report('sealroot digest vs fsverity digest  ', digest, fsverity, 0.75, 'digest', 'fsverity digest');
  figures.value('image size', SIZE, { unit: 'bytes' });
  const inProcess = median(load.map((sample) => Number(/^time: ([0-9.]+) ms$/m.exec(sample.stdout)?.[1] ?? NaN)));
  console.log(`sealroot load, in-process part (open to sealed memfd, as it reports): ${inProcess.toFixed(0)} ms median`);
  figures.value('load in-process', inProcess, { statistic: `median of ${RUNS}`, note: 'open to sealed memfd, as sealroot load reports it' });
  const p = parts();
  const cores = os.availableParallelism();
  const hash = Number.isNaN(p.native!) ? p.blocks! : p.native!;
  console.log(`parts, one thread, 256 MiB: read ${p.read!.toFixed(0)} ms, copy into a memfd (sendfile) ${p.copy!.toFixed(0)} ms, `
    + `SHA-256 per 4 KiB block: node:crypto ${p.blocks!.toFixed(0)} ms, shim ${p.native!.toFixed(0)} ms (whole-buffer SHA-256: ${p.whole!.toFixed(0)} ms); `
    + `sealroot startup ${startup.toFixed(0)} ms`);
  figures.value('part read', p.read!, { note: 'one thread, 256 MiB' });
  figures.value('part copy into memfd', p.copy!, { note: 'sendfile, one thread, 256 MiB' });
  figures.value('part sha256 per block', p.blocks!, { note: 'node:crypto, one thread, 256 MiB' });
  if (!Number.isNaN(p.native!)) figures.value('part sha256 per block native', p.native!, { note: "the shim's hashBlocks, one thread, 256 MiB" });
  figures.value('part sha256 whole buffer', p.whole!, { note: 'node:crypto, one thread, 256 MiB' });
  figures.value('startup', startup, { statistic: 'median of 5', note: 'sealroot --version' });
  figures.value('floor load', startup + (hash + p.copy!) / cores, { note: `startup + (hash + copy) / ${cores} cores` });
  figures.value('floor digest', startup + (hash + p.read!) / cores, { note: `startup + (hash + read) / ${cores} cores` });
  console.log(`floor on ${cores} cores: load ~ startup + (hash + copy) / cores = ${(startup + (hash + p.copy!) / cores).toFixed(0)} ms; `
    + `digest ~ startup + (hash + read) / cores = ${(startup + (hash + p.read!) / cores).toFixed(0)} ms`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(shmCopy, { force: true });
}
