// Where the verified image lives in memory (issue 17) and the bound on the copy (issue 12), on the host kernel:
// a hugetlb memfd holds the sealed image, a loop device reads it and EROFS mounts it; "require" refuses without
// huge pages, "prefer" falls back with a warning, "off" takes a plain memfd; a copy the machine (or the memory
// cgroup) cannot hold is refused before it starts, with one copy-image line and no OOM kill.
import { execFileSync, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadImage, type LoadImageOptions } from '../../src/image/load.ts';
import { closeImageMemfd, createImageMemfd, type ImageMemoryOptions } from '../../src/image/memory.ts';
import type { Logger } from '../../src/log.ts';
import { attachReadOnlyLoop } from '../../src/mount/loop-device.ts';
import { closeFd } from '../../src/sys/io.ts';
import { addressOf } from '../../src/sys/native.ts';
import { readMemoryFigures } from '../../src/sys/memory.ts';
import { parseDigest, type Digest } from '../../src/verity/digest.ts';
import { refusedLoad } from '../helpers/image-load.ts';
import { requireRoot, requireTools, ROOT } from '../helpers/tools.ts';

requireRoot();
requireTools('fsverity', 'mkfs.erofs', 'zstd', 'mount', 'umount');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-memory-'));
const HUGE_PAGE = readMemoryFigures().hugePageSize;

function digestOf(file: string): Digest {
  return parseDigest(execFileSync('fsverity', ['digest', '--hash-alg=sha256', file], { encoding: 'utf8' }).split(' ')[0]!);
}

function capture(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const push = (line: string) => lines.push(line);
  return { log: { info: push, notice: push, warn: push, error: push }, lines };
}

async function refusedAt(options: LoadImageOptions, step: string, reason: RegExp): Promise<void> {
  await refusedLoad(options, reason, step);
}

// An EROFS image with a few files, 3 MiB of data so it spans two huge pages.
const tree = path.join(dir, 'tree');
fs.mkdirSync(path.join(tree, 'etc'), { recursive: true });
fs.writeFileSync(path.join(tree, 'etc/hostname'), 'sealed\n');
const blob = crypto.randomBytes(3 << 20);
fs.writeFileSync(path.join(tree, 'blob'), blob);
const imagePath = path.join(dir, 'root.erofs');
execFileSync('mkfs.erofs', ['--quiet', imagePath, tree]);
const imageSize = fs.statSync(imagePath).size;
const imageDigest = digestOf(imagePath);

/** Shared_Hugetlb + Private_Hugetlb of the mapping that holds `view` (/proc/self/smaps), in KiB. */
function hugetlbKiB(view: Uint8Array): number {
  const address = addressOf(view);
  const lines = fs.readFileSync('/proc/self/smaps', 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const range = /^([0-9a-f]+)-([0-9a-f]+) /.exec(lines[i]!);
    if (range === null || address < BigInt(`0x${range[1]}`) || address >= BigInt(`0x${range[2]}`)) continue;
    let kib = 0;
    for (let j = i + 1; j < lines.length && !/^[0-9a-f]+-[0-9a-f]+ /.test(lines[j]!); j++) {
      const field = /^(Shared|Private)_Hugetlb:\s+(\d+) kB$/.exec(lines[j]!);
      if (field !== null) kib += Number(field[2]);
    }
    return kib;
  }
  throw new Error(`no mapping holds 0x${address.toString(16)}`);
}

test('hugetlb (the default "require"): the sealed image is in huge pages the kernel counts, and a loop device + EROFS read it', async () => {
  const pages = Math.ceil(imageSize / HUGE_PAGE);
  const image = await loadImage({ path: imagePath, expected: imageDigest });
  const mnt = path.join(dir, 'mnt');
  fs.mkdirSync(mnt, { recursive: true });
  try {
    assert.is(image.backing, 'hugetlb');
    const held = readMemoryFigures();
    // The pool holds the image's pages (grown if it had too few free), all in use by the memfd. (Other loaders may
    // run on this machine at the same time, and earlier tests' mappings go when collected: the pool's figures are
    // compared with at least; the memfd's own pages are counted in its mapping's smaps entry.)
    assert.ok(held.hugePagesTotal >= pages, 'the pool holds the image\'s pages');
    assert.ok(held.hugePagesTotal - held.hugePagesFree >= pages, 'huge pages in use');
    // The view is mapped when first asked for: a read of each huge page faults it in, and smaps counts it.
    const view = image.bytes;
    const source = fs.readFileSync(imagePath);
    const offsets = Array.from({ length: pages }, (_, page) => page * HUGE_PAGE + 4095);
    assert.equal(offsets.map((at) => view[at]), offsets.map((at) => source[at]), 'the mapping reads the image\'s bytes');
    assert.is(hugetlbKiB(view), pages * (HUGE_PAGE / 1024), 'the memfd\'s mapping is backed by the image\'s huge pages');
    const loop = attachReadOnlyLoop(image.fd, 'sealroot-test-hugetlb');
    try {
      execFileSync('mount', ['-t', 'erofs', '-o', 'ro', loop.path, mnt]);
      try {
        assert.is(fs.readFileSync(path.join(mnt, 'etc/hostname'), 'utf8'), 'sealed\n');
        assert.ok(fs.readFileSync(path.join(mnt, 'blob')).equals(blob), 'the 3 MiB file reads back through the loop device');
      } finally {
        execFileSync('umount', [mnt]);
      }
    } finally {
      closeFd(loop.fd);
    }
  } finally {
    closeFd(image.fd);
  }
});

test('the pages this load added: nothing read or given back while the open memfd holds them all; the rest given back once closed', () => {
  for (const extra of [0, 1]) {
    let reads = 0;
    let free = 0;
    const released: number[] = [];
    const memory: ImageMemoryOptions = {
      unswappable: 'require',
      figures: () => {
        reads += 1;
        return {
          meminfo: { memTotal: 2 ** 33, memAvailable: 2 ** 33, hugePageSize: HUGE_PAGE, hugePagesTotal: 0, hugePagesFree: free, hugePagesReserved: 0 },
          cgroup: undefined,
        };
      },
      // The pool grows by the 2 pages the image needs, or by one more (another process raced the growth).
      growPool: (pages) => ({ added: pages + extra, available: pages + extra }),
      releasePool: (pages) => released.push(pages),
    };
    const image = createImageMemfd(2 * HUGE_PAGE, 'test-image', memory);
    assert.is(image.backing, 'hugetlb');
    reads = 0;
    free = extra;
    image.releaseUnused(2 * HUGE_PAGE);
    assert.is(reads, extra, extra === 0 ? 'nothing to give back: the figures are not read' : 'one page more than held: the pool is read');
    assert.equal(released, extra === 0 ? [] : [1]);
    free = 2;
    closeImageMemfd(image);
    assert.equal(released, extra === 0 ? [2] : [1, 2], 'once closed, the pages still added are given back');
  }
});

test('"require" refuses when the pool cannot hold the image, "prefer" falls back with a warning line, "off" takes a plain memfd', async () => {
  const noPages = () => ({ added: 0, available: 0 });
  await refusedAt({ path: imagePath, expected: imageDigest, memory: { unswappable: 'require', growPool: noPages } }, 'copy-image',
    /^memory\.unswappable = "require": no unswappable memory for the image: the huge page pool holds 0 free pages of the 2 needed/);

  const prefer = capture();
  const fallback = await loadImage({ path: imagePath, expected: imageDigest, log: prefer.log, memory: { unswappable: 'prefer', growPool: noPages } });
  closeFd(fallback.fd);
  assert.is(fallback.backing, 'shmem');
  const warnings = prefer.lines.filter((line) => line.includes('WARNING'));
  assert.is(warnings.length, 1);
  assert.match(warnings[0]!, /^copy-image: .*: WARNING: the image goes into swappable memory \(memory\.unswappable = "prefer"\): .*a writer of the swap device could change the mounted image$/);

  const off = capture();
  const plain = await loadImage({ path: imagePath, expected: imageDigest, log: off.log, memory: { unswappable: 'off' } });
  closeFd(plain.fd);
  assert.is(plain.backing, 'shmem');
  assert.is(off.lines.filter((line) => line.includes('WARNING')).length, 0);
});

test('the copy is bounded before it starts: by the memory left, and by the trusted size (plain and zstd)', async () => {
  const tight = () => {
    const meminfo = readMemoryFigures();
    // 64 MiB available and no free huge page: whatever this machine's pool holds now.
    return { meminfo: { ...meminfo, memAvailable: 64 << 20, hugePagesFree: 0, hugePagesReserved: 0 }, cgroup: undefined };
  };
  let copied = 0;
  const tuning = { onChunk: () => (copied += 1) };
  await refusedAt({ path: imagePath, expected: imageDigest, tuning, memory: { unswappable: 'off', figures: tight, margin: 63 << 20 } }, 'copy-image',
    /^the image is \d+ bytes, more than the memory left for it: 1\.0 MiB \(MemAvailable 64\.0 MiB, margin 63\.0 MiB\)$/);
  await refusedAt({ path: imagePath, expected: imageDigest, tuning, memory: { figures: tight, margin: 63 << 20 } }, 'copy-image',
    /^memory\.unswappable = "require": no unswappable memory for the image: 2 huge pages \(4\.0 MiB\) for the image, 0 free in the pool, and 4\.0 MiB more do not fit/);
  assert.is(copied, 0, 'nothing was copied');

  await refusedAt({ path: imagePath, expected: imageDigest, expectedSize: imageSize - 4096 }, 'copy-image', new RegExp(`^the image is ${imageSize} bytes, the trusted image is ${imageSize - 4096}$`));
  const exact = await loadImage({ path: imagePath, expected: imageDigest, expectedSize: imageSize });
  closeFd(exact.fd);

  execFileSync('zstd', ['-q', '-f', imagePath, '-o', `${imagePath}.zst`]);
  let decompressed = 0;
  await refusedAt({ path: `${imagePath}.zst`, expected: imageDigest, expectedSize: 1 << 20, tuning: { onChunk: (done) => (decompressed = done) } }, 'copy-image',
    /^the decompressed image is larger than the trusted image \(1048576 bytes\)$/);
  assert.ok(decompressed <= 1 << 20, `the decompression stopped at the trusted size (${decompressed} bytes written)`);
  await refusedAt({ path: `${imagePath}.zst`, expected: imageDigest, memory: { unswappable: 'off', figures: tight, margin: 63 << 20 } }, 'copy-image',
    /^the decompressed image is over the memory left for it \(MemAvailable 64\.0 MiB, margin 63\.0 MiB\)$/);
  const zst = await loadImage({ path: `${imagePath}.zst`, expected: imageDigest, expectedSize: imageSize });
  try {
    assert.is(zst.backing, 'hugetlb');
    assert.is(zst.size, imageSize);
    assert.ok(Buffer.from(zst.bytes).equals(fs.readFileSync(imagePath)), 'the hugetlb memfd holds the decompressed image');
  } finally {
    closeFd(zst.fd);
  }
});

/** Runs the loader in a child process placed in a new memory cgroup (v1 or v2) limited to `limit` bytes. */
function loadInCgroup(image: string, limit: number, unswappable: string, bounded = true): { status: number | null; signal: string | null; stderr: string; oomKills: number } {
  const v1 = fs.existsSync('/sys/fs/cgroup/memory/memory.limit_in_bytes');
  const group = v1 ? `/sys/fs/cgroup/memory/sealroot-test-${process.pid}` : `/sys/fs/cgroup/sealroot-test-${process.pid}`;
  fs.mkdirSync(group);
  try {
    if (v1) {
      fs.writeFileSync(path.join(group, 'memory.limit_in_bytes'), String(limit));
      fs.writeFileSync(path.join(group, 'memory.memsw.limit_in_bytes'), String(limit), { flag: 'w' });
    } else {
      fs.writeFileSync(path.join(group, 'memory.max'), String(limit));
      fs.writeFileSync(path.join(group, 'memory.swap.max'), '0');
    }
    const script = `
      import { loadImage } from ${JSON.stringify(path.join(ROOT, 'src/image/load.ts'))};
      import { parseDigest } from ${JSON.stringify(path.join(ROOT, 'src/verity/digest.ts'))};
      try {
        // "unbounded": a margin so negative that the bound never refuses (what the loader did before issue 12).
        const margin = process.argv[3] === 'unbounded' ? -(2 ** 50) : undefined;
        await loadImage({ path: process.argv[1], expected: parseDigest('00'.repeat(32)), memory: { unswappable: process.argv[2], margin } });
        console.error('loaded');
      } catch (error) {
        console.error('sealroot: ' + error.message);
        process.exit(1);
      }`;
    const result = spawnSync('sh', ['-c', `echo $$ > ${group}/cgroup.procs && exec "$0" --input-type=module -e "$1" "$2" "$3" "$4"`, process.execPath, script, image, unswappable, bounded ? 'bounded' : 'unbounded'], { encoding: 'utf8' });
    const oomControl = v1 ? fs.readFileSync(path.join(group, 'memory.oom_control'), 'utf8') : fs.readFileSync(path.join(group, 'memory.events'), 'utf8');
    const oomKills = Number(/oom_kill (\d+)/.exec(oomControl)?.[1] ?? 0);
    return { status: result.status, signal: result.signal, stderr: result.stderr, oomKills };
  } finally {
    fs.rmdirSync(group);
  }
}

test('a huge sparse image in a 256 MiB memory cgroup is refused with one line, no OOM kill (plain and hugetlb memfd)', () => {
  const sparse = path.join(dir, 'sparse.erofs');
  fs.closeSync(fs.openSync(sparse, 'w'));
  fs.truncateSync(sparse, 1900 * 2 ** 20);
  for (const unswappable of ['off', 'require']) {
    const result = loadInCgroup(sparse, 256 * 2 ** 20, unswappable);
    assert.is(result.signal, null, `${unswappable}: not killed (${result.stderr.trim()})`);
    assert.is(result.oomKills, 0, `${unswappable}: no OOM kill in the cgroup`);
    assert.is(result.status, 1);
    const lines = result.stderr.trim().split('\n');
    assert.is(lines.length, 1, result.stderr);
    assert.match(lines[0]!, unswappable === 'off'
      ? /^sealroot: copy-image: the image is 1992294400 bytes, more than the memory left for it: [\d.]+ MiB \(MemAvailable [\d.]+ MiB, cgroup headroom [\d.]+ MiB, margin [\d.]+ MiB\) \(\/.*\/sparse\.erofs\)$/
      : /^sealroot: copy-image: memory\.unswappable = "require": no unswappable memory for the image: 950 huge pages \(1900\.0 MiB\) for the image, \d+ free in the pool, and [\d.]+ MiB more do not fit \(MemAvailable [\d.]+ MiB, cgroup headroom [\d.]+ MiB, margin [\d.]+ MiB\) \(\/.*\/sparse\.erofs\)$/);
  }
  // The same child without the bound: the cgroup's OOM killer ends it (the failure issue 12 reported).
  const unbounded = loadInCgroup(sparse, 256 * 2 ** 20, 'off', false);
  assert.is(unbounded.signal, 'SIGKILL');
  assert.is(unbounded.oomKills, 1);
});

// The huge page pool is left as grown: shrinking it back here could take pages another loader on this machine has
// just added for itself (the kernel keeps only pages in use or reserved).
test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
test.run();
