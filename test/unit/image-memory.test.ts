// Pure parts of issue 17's memory work: the kernel's figures as sealroot reads them, and the QEMU judge of the swap
// scenarios (a boot whose image went to swap must not pass as resident, and the attack must really show).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { hugePageFlag } from '../../src/image/memory.ts';
import {
  availableHugePages, cgroupHeadroom, growHugePagePool, parseMeminfo, parseMemoryCgroup, readPoolFigures, smallestHugePagePool, type MemInfo,
} from '../../src/sys/memory.ts';
import { judge, SCENARIOS, swapFigures } from '../../qemu/lib/scenarios.ts';

const MEMINFO = `MemTotal:        1000000 kB
MemFree:          500000 kB
MemAvailable:     700000 kB
Shmem:              1234 kB
HugePages_Total:       8
HugePages_Free:        5
HugePages_Rsvd:        2
HugePages_Surp:        0
Hugepagesize:       2048 kB
`;

test('meminfo: bytes for kB fields, pages for the pool; free pages promised to a mapping are not available', () => {
  const info = parseMeminfo(MEMINFO);
  assert.equal(info, {
    memTotal: 1_024_000_000, memAvailable: 716_800_000, hugePageSize: 2 << 20, hugePagesTotal: 8, hugePagesFree: 5, hugePagesReserved: 2,
  });
  assert.is(availableHugePages(info), 3);
  assert.is(parseMeminfo('MemTotal: 1 kB\nMemAvailable: 1 kB\n').hugePageSize, 0, 'no hugetlb: no page size');
  assert.throws(() => parseMeminfo('MemTotal: 1 kB\n'), /no MemAvailable/);
  // Lines that are not "Name: digits[ kB]" are skipped.
  const odd = parseMeminfo('MemTotal: 4 kB\nMemAvailable: 12x kB\nMemAvailable: kB\n: 5\nMemAvailable:   3 kB\nHugePages_Total:   -1\n');
  assert.equal([odd.memTotal, odd.memAvailable, odd.hugePagesTotal], [4096, 3072, 0]);
});

test('growing the pool: from the figures the caller read (not read again before the write), checked after it', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-pool-'));
  try {
    const nr = path.join(dir, 'nr_hugepages');
    fs.writeFileSync(nr, '2\n');
    // A pool of 2 pages, 1 free: the kernel (this fake) grants what is written.
    const info = (total: number, free: number): MemInfo => ({ ...parseMeminfo(MEMINFO), hugePagesTotal: total, hugePagesFree: free, hugePagesReserved: 0 });
    let reads = 0;
    const figures = () => {
      reads += 1;
      const total = Number(fs.readFileSync(nr, 'utf8'));
      return info(total, total - 1);
    };
    assert.equal(growHugePagePool(4, nr, figures, info(2, 1)), { added: 3, available: 4 });
    assert.is(fs.readFileSync(nr, 'utf8'), '5\n');
    assert.is(reads, 1, 'the figures are read once, after the write');
    // Without them, read first: the same outcome from the same state.
    fs.writeFileSync(nr, '2\n');
    reads = 0;
    assert.equal(growHugePagePool(4, nr, figures), { added: 3, available: 4 });
    assert.is(reads, 2);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('huge pages: the smallest size the kernel offers, whatever the default; its MFD_HUGE_ flag', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-hugepages-'));
  try {
    for (const [size, total, free] of [['1048576', 2, 2], ['2048', 8, 5], ['32768', 0, 0]] as const) {
      const pool = path.join(dir, `hugepages-${size}kB`);
      fs.mkdirSync(pool);
      fs.writeFileSync(path.join(pool, 'nr_hugepages'), `${total}\n`);
      fs.writeFileSync(path.join(pool, 'free_hugepages'), `${free}\n`);
      fs.writeFileSync(path.join(pool, 'resv_hugepages'), '1\n');
    }
    assert.equal(smallestHugePagePool(dir), { size: 2 << 20, total: 8, free: 5, reserved: 1, nrFile: path.join(dir, 'hugepages-2048kB/nr_hugepages') });
    // Names that are not a pool's: ignored, not a size of 0 or NaN.
    for (const name of ['hugepages-kB', 'hugepages-1x24kB', 'hugepages-512', 'other-1kB']) fs.mkdirSync(path.join(dir, name));
    assert.is(smallestHugePagePool(dir)?.size, 2 << 20);
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
  assert.is(smallestHugePagePool('/nonexistent'), undefined);
  // include/uapi/linux/memfd.h: MFD_HUGE_2MB = 21 << 26, MFD_HUGE_1GB = 30 << 26.
  assert.is(hugePageFlag(2 << 20), 0x54000000);
  assert.is(hugePageFlag(2 ** 30), 0x78000000);
});

test('memory cgroup: the v1 memory hierarchy when mounted, else v2', () => {
  assert.equal(parseMemoryCgroup('9:name=systemd:/\n4:memory:/process_api/abc\n0::/\n'), { version: 1, path: '/process_api/abc' });
  assert.equal(parseMemoryCgroup('5:cpuacct,memory:/x\n'), { version: 1, path: '/x' });
  assert.equal(parseMemoryCgroup('0::/system.slice/sealroot.service\n'), { version: 2, path: '/system.slice/sealroot.service' });
  assert.is(parseMemoryCgroup('1:cpu:/\n'), undefined);
  // A path holding ':' stays whole; "memory" must be a whole controller name in the second field, after a decimal ID.
  assert.equal(parseMemoryCgroup('4:memory:/a:b\n'), { version: 1, path: '/a:b' });
  assert.equal(parseMemoryCgroup('4:memoryx:/a\n3:x,memory,y:/b\n'), { version: 1, path: '/b' });
  assert.is(parseMemoryCgroup('x:memory:/a\n:memory:/b\n4:memory\n2:cpu:/memory:/c\n'), undefined);
});

test('memory cgroup headroom: the smallest limit - usage on the way up; unlimited levels and the missing root files skipped', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-cgroup-'));
  try {
    const self = path.join(dir, 'self-cgroup');
    const root = path.join(dir, 'fs');
    const level = (rel: string, files: Record<string, string>) => {
      fs.mkdirSync(path.join(root, rel), { recursive: true });
      for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(root, rel, name), text);
    };
    // v2: the service unlimited (and without memory.current: it is not read for "max"), the slice 1000 - 400, the
    // namespace's root (a container's view) 5000 - 4500.
    level('slice/svc', { 'memory.max': 'max\n' });
    level('slice', { 'memory.max': '1000\n', 'memory.current': '400\n' });
    level('', { 'memory.max': '5000\n', 'memory.current': '4500\n' });
    fs.writeFileSync(self, '0::/slice/svc\n');
    assert.is(cgroupHeadroom(root, self), 500);
    // Without the root's files (the real root cgroup): the slice's headroom.
    fs.rmSync(path.join(root, 'memory.max'));
    fs.rmSync(path.join(root, 'memory.current'));
    assert.is(cgroupHeadroom(root, self), 600);
    // A limit whose usage cannot be read is no headroom figure; no limit anywhere: undefined.
    fs.rmSync(path.join(root, 'slice/memory.current'));
    assert.is(cgroupHeadroom(root, self), undefined);
    // v1: "no limit" is a page-rounded LONG_MAX.
    level('memory/job', { 'memory.limit_in_bytes': '9223372036854771712\n', 'memory.usage_in_bytes': '1\n' });
    level('memory', { 'memory.limit_in_bytes': '3000\n', 'memory.usage_in_bytes': '1000\n' });
    fs.writeFileSync(self, '4:memory:/job\n0::/\n');
    assert.is(cgroupHeadroom(root, self), 2000);
    assert.is(cgroupHeadroom(root, path.join(dir, 'absent')), undefined, 'no /proc/self/cgroup: no limit');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a pool\'s free and reserved pages: its own two files, or /proc/meminfo for the default pool', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-pool-'));
  try {
    fs.writeFileSync(path.join(dir, 'nr_hugepages'), '9\n');
    fs.writeFileSync(path.join(dir, 'free_hugepages'), '4\n');
    fs.writeFileSync(path.join(dir, 'resv_hugepages'), '1\n');
    const pool = readPoolFigures(path.join(dir, 'nr_hugepages'));
    assert.equal(pool, { hugePagesFree: 4, hugePagesReserved: 1 });
    assert.is(availableHugePages(pool), 3);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const fromMeminfo = readPoolFigures('/proc/sys/vm/nr_hugepages');
  assert.ok(Number.isInteger(fromMeminfo.hugePagesFree) && Number.isInteger(fromMeminfo.hugePagesReserved));
});

const scenario = (name: string) => SCENARIOS.find((entry) => entry.name === name)!;
const MD5 = 'cf4dacb6a28ad70e0d3ecd56b746e687';
const common = ['@@ SEALROOT-EXIT 0', '@@ T root-init 30.1', '@@ CHECK root-overlay-verity ok', `@@ VICTIM read ok ${MD5}`, '@@ END'];
const figures = (when: string, huge: [number, number], swapFree: number) =>
  `@@ SWAP ${when} MemTotal: 475940 SwapTotal: 1048572 SwapFree: ${swapFree} Shmem: 52 HugePages_Total: ${huge[0]} HugePages_Free: ${huge[1]} `;

test('swap judge: resident in huge pages passes; pages gone, image found in swap or no pressure fails', () => {
  const good = [figures('before', [1, 0], 1048572), figures('after', [1, 0], 754504), '@@ SWAP image-in-swap no (scanned 357 MiB)', '@@ CHECK hello ok', ...common];
  assert.equal(swapFigures(good, 'after')!.HugePages_Total, 1);
  const pass = judge(scenario('swap-pressure'), good, false, MD5);
  assert.ok(pass.pass, pass.reason);
  assert.match(pass.reason, /huge pages in use 1 -> 1, swap used 287 MiB/);
  const inSwap = good.map((line) => line.replace('image-in-swap no (scanned 357 MiB)', 'image-in-swap yes at 4934'));
  assert.not.ok(judge(scenario('swap-pressure'), inSwap, false, MD5).pass);
  const freed = good.map((line) => line.replace(figures('after', [1, 0], 754504), figures('after', [1, 1], 754504)));
  assert.not.ok(judge(scenario('swap-pressure'), freed, false, MD5).pass);
  const noPressure = good.map((line) => line.replace('SwapFree: 754504', 'SwapFree: 1048572'));
  assert.match(judge(scenario('swap-pressure'), noPressure, false, MD5).reason, /never reached the swap device/);
});

test('swap-tamper judge: with unswappable = "off" the changed name must show; with the default the listing must not change', () => {
  const off = ['@@ MEMORY unswappable=off', '@@ SWAP listing-before hello.txt victim.bin ', figures('before', [0, 0], 1048572), figures('after', [0, 0], 754504),
    '@@ SWAP image-in-swap yes at 42099', '@@ SWAP listing-after HACKD.txt victim.bin ', '@@ CHECK hello FAILED: cat: can\'t open', ...common];
  const shown = judge(scenario('swap-tamper'), off, false, MD5, 'off');
  assert.ok(shown.pass, shown.reason);
  assert.match(shown.reason, /attack shown: .*HACKD\.txt victim\.bin/);
  const unchanged = off.map((line) => line.replace('listing-after HACKD.txt', 'listing-after hello.txt'));
  assert.match(judge(scenario('swap-tamper'), unchanged, false, MD5, 'off').reason, /did not show up/);
  const defaults = ['@@ SWAP listing-before hello.txt victim.bin ', figures('before', [1, 0], 1048572), figures('after', [1, 0], 754504),
    '@@ SWAP image-in-swap no (scanned 357 MiB)', '@@ SWAP listing-after hello.txt victim.bin ', '@@ CHECK hello ok', ...common];
  assert.ok(judge(scenario('swap-tamper'), defaults, false, MD5).pass);
  const changed = defaults.map((line) => line.replace('listing-after hello.txt', 'listing-after HACKD.txt'));
  assert.not.ok(judge(scenario('swap-tamper'), changed, false, MD5).pass);
});

test.run();
