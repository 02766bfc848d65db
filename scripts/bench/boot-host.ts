// Host boot: wall time of `sealroot boot` from exec to the root mounted at the sysroot, 64 MiB composefs image, in
// two configurations: the trusted set read from a TPM (swtpm on loopback, provisioned with the test key: the read,
// the cap, and no validation at boot, the image having been validated when signed) and the development karg
// (`sealroot.digest=`, unsigned: validated at every boot),
// composefs-rs layout with the default /etc overlay and /var bind, verity=require. Median of several runs, with
// the agent's own per-step times; against the same job done by the standard tools in the same run:
//   cp IMAGE /run && fsverity digest && mount -t erofs -o loop,ro && mount -t overlay (lowerdir=IMG::OBJ, verity=require).
// Each run is in a private mount namespace (the script re-executes itself under unshare) with /run on tmpfs.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { figures } from './lib/figures.ts';
import { startSwtpm } from '../../test/helpers/swtpm.ts';

const root = path.resolve(import.meta.dirname, '../..');
const binary = path.join(root, 'dist/sealroot');
const RUNS = 15;
const TARGET_MS = 150;
const IMAGE_BYTES = 64 << 20;

if (process.env.SEALROOT_BENCH_INNER !== '1') {
  if (process.getuid?.() !== 0) throw new Error('boot-host needs root (mounts, loop devices)');
  const inner = spawnSync('unshare', ['--mount', '--propagation', 'private', process.execPath, import.meta.filename], {
    stdio: 'inherit', env: { ...process.env, SEALROOT_BENCH_INNER: '1' },
  });
  process.exit(inner.status ?? 1);
}

function sh(file: string, args: string[], input?: string): string {
  const result = spawnSync(file, args, { encoding: 'utf8', input, maxBuffer: 1 << 26 });
  if (result.status !== 0) throw new Error(`${file} ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  return result.stdout;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

if (!fs.existsSync(binary)) throw new Error(`${binary} is missing: npm run build`);
sh('mount', ['-t', 'tmpfs', '-o', 'size=1g', 'tmpfs', '/run']);
// The image takes a while to make (20000 objects): it is kept in .cache/ between runs.
const cacheDir = path.join(root, '.cache/bench/boot-host-v1');
const work = fs.mkdtempSync('/var/tmp/sealroot-bench-boot-');
const sysroot = path.join(cacheDir, 'sysroot');
const objects = path.join(sysroot, 'composefs/objects');
interface Made {
  digest: string;
  size: number;
  links: number;
  seconds: number;
}

function makeFixture(): Made {
  fs.rmSync(cacheDir, { recursive: true, force: true });
  const started = performance.now();
  // The tree: 20000 regular files (objects, a metacopy inode each), 500 directories, and long symlinks (targets
  // live in the image) until the image is 64 MiB.
  const source = path.join(cacheDir, 'source');
  for (let d = 0; d < 500; d++) {
    const dir = path.join(source, 'usr/share', `pkg${d}`);
    fs.mkdirSync(dir, { recursive: true });
    for (let f = 0; f < 40; f++) fs.writeFileSync(path.join(dir, `file${f}.dat`), `${d}/${f} `.repeat(20 + ((d * 40 + f) % 200)));
  }
  for (const dir of ['etc', 'var', 'sysroot', 'run']) fs.mkdirSync(path.join(source, dir), { recursive: true });
  const image = path.join(cacheDir, 'image.cfs');
  const mkimage = (): void => {
    sh(binary, ['mkimage', `--digest-store=${objects}`, source, image]);
  };
  mkimage();
  const linkDir = path.join(source, 'usr/lib/links');
  fs.mkdirSync(linkDir, { recursive: true });
  const perLink = 4096 + 64; // a 4000-byte target takes a block, plus its inode
  const links = Math.max(0, Math.floor((IMAGE_BYTES - fs.statSync(image).size) / perLink));
  for (let i = 0; i < links; i++) fs.symlinkSync(`/${String(i).padStart(8, '0')}`.padEnd(4000, 'z'), path.join(linkDir, `l${i}`));
  mkimage();
  const size = fs.statSync(image).size;
  const digest = sh('fsverity', ['digest', '--hash-alg=sha256', '--block-size=4096', image]).split(/\s+/)[0]!;
  const hex = digest.replace('sha256:', '');
  fs.mkdirSync(path.join(sysroot, 'composefs/images'), { recursive: true });
  fs.renameSync(image, path.join(sysroot, 'composefs/images', hex));
  for (const dir of ['etc', 'var']) fs.mkdirSync(path.join(sysroot, 'state/deploy', hex, dir), { recursive: true });
  fs.rmSync(source, { recursive: true, force: true });
  const made = { digest, size, links, seconds: (performance.now() - started) / 1000 };
  fs.writeFileSync(path.join(cacheDir, 'made.json'), JSON.stringify(made));
  return made;
}

let tpm: Awaited<ReturnType<typeof startSwtpm>> | undefined;
try {
  let made: Made;
  let cached = true;
  try {
    made = JSON.parse(fs.readFileSync(path.join(cacheDir, 'made.json'), 'utf8')) as Made;
    if (!fs.existsSync(path.join(sysroot, 'composefs/images', made.digest.replace('sha256:', '')))) throw new Error('image missing');
  } catch {
    cached = false; // no usable cache: make it
    made = makeFixture();
  }
  const { digest, size, links } = made;
  const hex = digest.replace('sha256:', '');
  const built = cached ? `cached in ${path.relative(root, cacheDir)}` : `made in ${made.seconds.toFixed(1)} s`;
  const karg = { config: path.join(work, 'boot.toml'), cmdline: `composefs=${hex} sealroot.digest=${digest}` };
  fs.writeFileSync(karg.config, `[digest]\nsource = "cmdline"\nallow-unauthenticated-cmdline = true\n[root]\nsysroot = "${sysroot}"\n`);
  // The trusted set: the image signed at version 1 (validated then: --image), the read approval for PCR 7.
  tpm = await startSwtpm();
  const state = path.join(work, 'tpm-state');
  sh(binary, ['provision', '--tpm', tpm.tcti!, '--signing-key', path.join(root, 'keys/test-policy-key.pem'), '--digest', digest,
    '--image', path.join(sysroot, 'composefs/images', hex), '--pcrs', 'sha256:7', '--state', state]);
  const signed = { config: path.join(work, 'boot-tpm.toml'), cmdline: `composefs=${hex}` };
  fs.writeFileSync(signed.config, `[tpm]\ntcti = "${tpm.tcti!}"\npcrs = "sha256:7"\nstate = "${state}"\n`
    + `policy-key = "${path.join(root, 'keys/test-policy-key.pub.pem')}"\n[root]\nsysroot = "${sysroot}"\n`);

  const agentTimes: number[] = [];
  const stepTimes = new Map<string, number[]>();
  const kargTimes: number[] = [];
  const runAgent = (variant: { config: string; cmdline: string }, times: number[], steps: boolean): void => {
    const started = process.hrtime.bigint();
    const result = spawnSync(binary, ['boot', '--config', variant.config, '--cmdline', variant.cmdline], { encoding: 'utf8', env: { SEALROOT_KMSG: '0' } });
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    if (result.status !== 0) throw new Error(`sealroot boot exited ${result.status}: ${result.stderr}`);
    const line = /step times \(ms\): (.*)/.exec(result.stderr)?.[1];
    if (line === undefined) throw new Error(`no step times in: ${result.stderr}`);
    let inSteps = 0;
    for (const part of line.split(', ')) {
      const [name, value] = part.split(' ') as [string, string];
      inSteps += Number(value);
      if (steps) stepTimes.set(name, [...(stepTimes.get(name) ?? []), Number(value)]);
    }
    if (steps) stepTimes.set('(exit, and between the steps)', [...(stepTimes.get('(exit, and between the steps)') ?? []), ms - inSteps]);
    times.push(ms);
    sh('umount', ['--lazy', sysroot]);
  };
  // A boot caps PCR 15: the next read needs a new boot of the TPM (outside the timed part).
  const runSigned = async (): Promise<void> => {
    await tpm!.restart();
    runAgent(signed, agentTimes, true);
  };

  const referenceTimes: number[] = [];
  const referenceSteps = new Map<string, number[]>();
  const lower = '/run/ref-erofs';
  const target = '/run/ref-root';
  fs.mkdirSync(lower);
  fs.mkdirSync(target);
  const runReference = (): void => {
    const copy = '/run/ref-image.cfs';
    const parts: [string, string, string[]][] = [
      ['cp', 'cp', [path.join(sysroot, 'composefs/images', hex), copy]],
      ['fsverity digest', 'fsverity', ['digest', '--hash-alg=sha256', '--block-size=4096', copy]],
      ['mount -t erofs -o loop', 'mount', ['-t', 'erofs', '-o', 'loop,ro', copy, lower]],
      ['mount -t overlay', 'mount', ['-t', 'overlay', 'composefs', '-o', `ro,metacopy=on,redirect_dir=on,verity=require,lowerdir=${lower}::${objects}`, target]],
    ];
    let total = 0;
    for (const [name, file, args] of parts) {
      const started = process.hrtime.bigint();
      const out = sh(file, args);
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      if (name === 'fsverity digest' && !out.startsWith(digest)) throw new Error(`reference digest ${out} != ${digest}`);
      total += ms;
      referenceSteps.set(name, [...(referenceSteps.get(name) ?? []), ms]);
    }
    referenceTimes.push(total);
    sh('umount', [target]);
    sh('umount', [lower]);
    fs.rmSync(copy);
  };

  await runSigned(); // warm the page cache for all
  runAgent(karg, kargTimes, false);
  runReference();
  agentTimes.length = 0;
  kargTimes.length = 0;
  referenceTimes.length = 0;
  stepTimes.clear();
  referenceSteps.clear();
  for (let i = 0; i < RUNS; i++) {
    await runSigned();
    runAgent(karg, kargTimes, false);
    runReference();
  }

  const agent = median(agentTimes);
  const unsigned = median(kargTimes);
  const reference = median(referenceTimes);
  console.log(`image: ${(size / 2 ** 20).toFixed(1)} MiB (${size} bytes; 20000 files in objects, ${links} long symlinks), ${built}`);
  console.log(`sealroot boot, trusted set from the TPM (swtpm), exec -> root mounted at the sysroot: ${agent.toFixed(1)} ms median of ${RUNS} (target <= ${TARGET_MS} ms: ${agent <= TARGET_MS ? 'met' : 'NOT met'})`);
  for (const [name, values] of stepTimes) console.log(`  ${name.padEnd(42)} ${median(values).toFixed(1).padStart(7)} ms`);
  console.log(`reference, standard tools (cp + fsverity digest + mount erofs loop + mount overlay): ${reference.toFixed(1)} ms median of ${RUNS}`);
  for (const [name, values] of referenceSteps) console.log(`  ${name.padEnd(42)} ${median(values).toFixed(1).padStart(7)} ms`);
  console.log(`ratio sealroot/reference: ${(agent / reference).toFixed(2)}x (sealroot also reads the TPM and caps a PCR, seals the memfd, `
    + 'sets up /etc, /var and the /sysroot bind; the reference spawns four processes and trusts nothing)');
  console.log(`sealroot boot, development karg (unsigned digest: the EROFS validated at boot): ${unsigned.toFixed(1)} ms median of ${RUNS}, `
    + `ratio ${(unsigned / reference).toFixed(2)}x`);
  const statistic = `median of ${RUNS}`;
  figures.value('image size', size, { unit: 'bytes' });
  figures.comparison('boot', agent, reference, 'cp + fsverity digest + mount erofs loop + mount overlay', { statistic, target: 1.0 });
  figures.comparison('boot, development karg (validated at boot)', unsigned, reference, 'cp + fsverity digest + mount erofs loop + mount overlay', { statistic });
  figures.value('boot exec to mounted root', agent, { statistic, target: TARGET_MS });
  for (const [name, values] of stepTimes) figures.value(`step ${name}`, median(values), { statistic });
  for (const [name, values] of referenceSteps) figures.value(`reference ${name}`, median(values), { statistic });
} finally {
  await tpm?.stop();
  fs.rmSync(work, { recursive: true, force: true });
}
