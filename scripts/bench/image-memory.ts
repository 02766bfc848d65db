// Where the image lives in memory (issue 17), against the plain memfd in the same run (median of RUNS, interleaved):
//   load into a hugetlb memfd (memory.unswappable = "require")  vs  load into a plain memfd ("off")
// for a 64 MiB image in the page cache, the huge page pool already holding the pages (as after the first boot
// step) and grown from empty (what a boot pays once); the memory each holds (the hugetlb memfd is rounded up to
// whole 2 MiB pages) for a few image sizes; and, for the copy (issue 15), the kernel's ways of copying 256 MiB from
// the page cache into memory, one thread, against cp to /dev/shm.
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { copyImage, loadImage } from '../../src/image/load.ts';
import type { Unswappable } from '../../src/config/boot-config.ts';
import { closeFd, ftruncate, sendfileFully } from '../../src/sys/io.ts';
import { MFD_ALLOW_SEALING, MFD_CLOEXEC, MFD_HUGETLB, memfdCreate } from '../../src/sys/memfd.ts';
import { growHugePagePool, readMemoryFigures } from '../../src/sys/memory.ts';
import { mapSharedWritable, preadToAddress, unmap } from '../../src/sys/mmap.ts';
import { parseDigest } from '../../src/verity/digest.ts';
import { attachReadOnlyLoop } from '../../src/mount/loop-device.ts';
import { figures } from './lib/figures.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const SIZE = 64 << 20;
const COPY_SIZE = 256 << 20;
const NR_HUGEPAGES = '/proc/sys/vm/nr_hugepages';

if (process.getuid?.() !== 0) throw new Error('image-memory: needs root (the huge page pool)');
if (readMemoryFigures().hugePageSize === 0) throw new Error('image-memory: no huge pages on this kernel');
const poolBefore = fs.readFileSync(NR_HUGEPAGES, 'utf8');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-bench-memory-'));

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function randomFile(name: string, size: number): string {
  const file = path.join(dir, name);
  const fd = fs.openSync(file, 'w');
  for (let offset = 0; offset < size; offset += 16 << 20) fs.writeSync(fd, crypto.randomBytes(Math.min(16 << 20, size - offset)));
  fs.closeSync(fd);
  fs.readFileSync(file); // in the page cache, for every contender alike
  return file;
}

async function load(file: string, digest: string, unswappable: Unswappable): Promise<{ ms: number; held: number; backing: string }> {
  const started = performance.now();
  const image = await loadImage({ path: file, expected: parseDigest(digest), memory: { unswappable } });
  const ms = performance.now() - started;
  const held = fs.fstatSync(image.fd).size;
  closeFd(image.fd);
  return { ms, held, backing: image.backing };
}

function time(action: () => void): number {
  const started = performance.now();
  action();
  return performance.now() - started;
}

try {
  const image = randomFile('image.erofs', SIZE);
  const digest = spawnSync('fsverity', ['digest', image], { encoding: 'utf8' }).stdout.split(' ')[0]!;
  if (!digest.startsWith('sha256:')) throw new Error('fsverity digest failed');

  // The pool grown from empty, once per run: what the first load of a boot pays.
  const grow: number[] = [];
  for (let run = 0; run < Math.min(RUNS, 3); run++) {
    fs.writeFileSync(NR_HUGEPAGES, '0\n');
    grow.push((await load(image, digest, 'require')).ms);
  }
  await load(image, digest, 'off'); // warm-up
  const huge: number[] = [];
  const plain: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    huge.push((await load(image, digest, 'require')).ms);
    plain.push((await load(image, digest, 'off')).ms);
  }
  const statistic = `median of ${RUNS}`;
  console.log(`image: 64 MiB of random bytes in the page cache; ${os.availableParallelism()} CPUs; ${statistic}`);
  figures.comparison('load hugetlb', median(huge), median(plain), 'load into a plain memfd', { statistic, note: 'pool already holding the pages' });
  figures.comparison('load hugetlb, pool grown', median(grow), median(plain), 'load into a plain memfd', { statistic: `median of ${grow.length}`, note: 'nr_hugepages from 0 first' });
  console.log(`load into a hugetlb memfd: ${median(huge).toFixed(1)} ms vs plain memfd ${median(plain).toFixed(1)} ms: ratio ${(median(huge) / median(plain)).toFixed(2)}x; `
    + `with the pool grown from 0 first: ${median(grow).toFixed(1)} ms (${(median(grow) / median(plain)).toFixed(2)}x)`);

  // The copy phase as the boot runs it (issue 15), with the shim: for the hugetlb memfd libuv's threads copy and hash
  // every range before copyImage returns; a plain memfd is copied by sendfile on this thread while libuv's threads
  // hash behind it (the rest in verify(), not timed here). cp of the same image to /dev/shm in the same run. The
  // minor faults (all threads) count the mappings' page faults: 4 KiB pages for a plain memfd, 2 MiB for hugetlb.
  const phase: Record<string, { ms: number[]; faults: number[] }> = { off: { ms: [], faults: [] }, require: { ms: [], faults: [] } };
  const cp64: number[] = [];
  const shm64 = `/dev/shm/sealroot-bench-64-${process.pid}`;
  for (let run = 0; run < RUNS; run++) {
    for (const unswappable of ['off', 'require'] as const) {
      const faults = process.resourceUsage().minorPageFault;
      const started = performance.now();
      const copied = await copyImage({ path: image, expected: parseDigest(digest), memory: { unswappable } });
      phase[unswappable]!.ms.push(performance.now() - started);
      closeFd((await copied.verify()).fd);
      phase[unswappable]!.faults.push(process.resourceUsage().minorPageFault - faults);
    }
    cp64.push(time(() => spawnSync('cp', [image, shm64])));
    fs.rmSync(shm64, { force: true });
  }
  for (const unswappable of ['off', 'require'] as const) {
    const name = unswappable === 'off' ? 'plain memfd' : 'hugetlb memfd';
    figures.comparison(`copy phase, ${name}`, median(phase[unswappable]!.ms), median(cp64), 'cp to /dev/shm (a process start included)', { statistic, note: 'copyImage as the boot runs it: hugetlb copied and hashed, plain copied' });
    figures.value(`copy phase, ${name}, minor faults`, median(phase[unswappable]!.faults), { unit: 'faults', statistic });
  }
  console.log(`copy phase of 64 MiB (copyImage as the boot runs it: hugetlb copied and hashed on libuv's threads, plain copied by sendfile): plain memfd ${median(phase.off!.ms).toFixed(1)} ms `
    + `(${(median(phase.off!.ms) / median(cp64)).toFixed(2)}x cp, ${median(phase.off!.faults)} minor faults), hugetlb memfd ${median(phase.require!.ms).toFixed(1)} ms `
    + `(${(median(phase.require!.ms) / median(cp64)).toFixed(2)}x cp, ${median(phase.require!.faults)} minor faults); cp to /dev/shm ${median(cp64).toFixed(1)} ms`);

  // Reading the loop device backed by each memfd (what EROFS reads through): loop reads the backing file with
  // read_iter (for hugetlb: hugetlbfs_read_iter from the file's huge pages), into the loop device's own page cache,
  // dropped before each read (BLKFLSBUF) so that every run reads the memfd again.
  const loopRead: Record<string, number[]> = { off: [], require: [] };
  for (let run = 0; run < RUNS; run++) {
    for (const unswappable of ['off', 'require'] as const) {
      const loaded = await loadImage({ path: image, expected: parseDigest(digest), memory: { unswappable } });
      const loop = attachReadOnlyLoop(loaded.fd, 'sealroot-bench');
      try {
        spawnSync('blockdev', ['--flushbufs', loop.path]);
        loopRead[unswappable]!.push(time(() => spawnSync('dd', [`if=${loop.path}`, 'of=/dev/null', 'bs=1M'])));
      } finally {
        closeFd(loop.fd);
        closeFd(loaded.fd);
      }
    }
  }
  figures.comparison('read the loop device, hugetlb memfd', median(loopRead.require!), median(loopRead.off!), 'the same on a plain memfd', { statistic, note: 'dd bs=1M of the whole device, its page cache dropped first' });
  console.log(`read 64 MiB through the loop device (dd, cache dropped): hugetlb memfd ${median(loopRead.require!).toFixed(1)} ms vs plain memfd ${median(loopRead.off!).toFixed(1)} ms: ${(median(loopRead.require!) / median(loopRead.off!)).toFixed(2)}x`);

  // Memory held: whole huge pages against the image's size.
  const sizes = [49152, (10 << 20) + 1, SIZE];
  const rows: string[] = [];
  for (const size of sizes) {
    const file = size === SIZE ? image : randomFile(`image-${size}.erofs`, size);
    const sizeDigest = spawnSync('fsverity', ['digest', file], { encoding: 'utf8' }).stdout.split(' ')[0]!;
    const held = (await load(file, sizeDigest, 'require')).held;
    const plainHeld = (await load(file, sizeDigest, 'off')).held;
    figures.comparison(`memory held, ${size} bytes`, held, plainHeld, 'plain memfd', { unit: 'bytes' });
    rows.push(`${size} bytes: hugetlb ${held} (${(held / plainHeld).toFixed(2)}x, +${((held - plainHeld) / 1024).toFixed(0)} KiB)`);
  }
  console.log(`memory held by the memfd (plain: the image's size): ${rows.join('; ')}`);

  // The copy alone (issue 15): 256 MiB from the page cache, one thread, by each way the kernel offers.
  const big = randomFile('copy.bin', COPY_SIZE);
  const source = fs.openSync(big, 'r');
  const shm = `/dev/shm/sealroot-bench-${process.pid}`;
  const ways: Record<string, number[]> = { cp: [], 'sendfile 1 MiB': [], 'sendfile 16 MiB': [], 'read+write 1 MiB': [], 'pread into a shmem mapping': [], 'pread into a hugetlb mapping': [] };
  const buffer = Buffer.allocUnsafe(1 << 20);
  if (growHugePagePool(COPY_SIZE / readMemoryFigures().hugePageSize).available < COPY_SIZE / readMemoryFigures().hugePageSize) throw new Error('image-memory: cannot grow the huge page pool to 256 MiB');
  const intoMapping = (flags: number): number => {
    const memfd = memfdCreate('bench', flags);
    ftruncate(memfd, COPY_SIZE);
    const address = mapSharedWritable(memfd, COPY_SIZE);
    const ms = time(() => {
      for (let offset = 0; offset < COPY_SIZE; offset += 1 << 20) preadToAddress(source, address + offset, 1 << 20, offset);
    });
    unmap(address, COPY_SIZE);
    closeFd(memfd);
    return ms;
  };
  const bySendfile = (chunk: number): number => {
    const memfd = memfdCreate('bench');
    const ms = time(() => {
      for (let offset = 0; offset < COPY_SIZE; offset += chunk) sendfileFully(memfd, source, offset, chunk);
    });
    closeFd(memfd);
    return ms;
  };
  for (let run = 0; run < RUNS; run++) {
    ways.cp!.push(time(() => spawnSync('cp', [big, shm])));
    fs.rmSync(shm, { force: true });
    ways['sendfile 1 MiB']!.push(bySendfile(1 << 20));
    ways['sendfile 16 MiB']!.push(bySendfile(16 << 20));
    const memfd = memfdCreate('bench');
    ways['read+write 1 MiB']!.push(time(() => {
      for (let offset = 0; offset < COPY_SIZE; offset += buffer.length) fs.writeSync(memfd, buffer, 0, fs.readSync(source, buffer, 0, buffer.length, offset));
    }));
    closeFd(memfd);
    ways['pread into a shmem mapping']!.push(intoMapping(MFD_CLOEXEC | MFD_ALLOW_SEALING));
    ways['pread into a hugetlb mapping']!.push(intoMapping(MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB));
  }
  fs.closeSync(source);
  const cp = median(ways.cp!);
  const lines: string[] = [];
  for (const [way, samples] of Object.entries(ways)) {
    if (way === 'cp') continue;
    figures.comparison(`copy 256 MiB: ${way}`, median(samples), cp, 'cp to /dev/shm (a process start included)', { statistic });
    lines.push(`${way} ${median(samples).toFixed(0)} ms (${(median(samples) / cp).toFixed(2)}x)`);
  }
  console.log(`copy 256 MiB from the page cache, one thread: cp to /dev/shm ${cp.toFixed(0)} ms; ${lines.join(', ')}`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.writeFileSync(NR_HUGEPAGES, poolBefore);
}
