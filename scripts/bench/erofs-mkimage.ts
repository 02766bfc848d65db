// Making and checking a composefs image of a real tree (default /usr, or EROFS_BENCH_SOURCE), against
// libcomposefs' mkcomposefs (the Debian sid 1.0.8 build the integration tests fetch) and erofs-utils' fsck.erofs,
// measured in the same run. Also checks that both images describe the same tree: equal bytes when the tree
// has no hard links, else ours equals `mkcomposefs --from-file` of our own dump.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { validateImage } from '../../src/erofs/validate.ts';
import { composefsTools } from '../../test/integration/erofs-tools.ts';
import { figures } from './lib/figures.ts';

const root = path.resolve(import.meta.dirname, '../..');
const source = process.env.EROFS_BENCH_SOURCE ?? '/usr';
const binary = path.join(root, 'dist/sealroot');
const sealroot = fs.existsSync(binary) ? [binary] : [path.join(root, 'node_modules/.bin/node'), path.join(root, 'src/cli/main.ts')];

function timed(argv: string[]): { seconds: number; stdout: string } {
  const started = performance.now();
  const result = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', maxBuffer: 1 << 30, env: { ...process.env, SEALROOT_KMSG: '0' } });
  if (result.status !== 0) throw new Error(`${argv.join(' ')} exited ${result.status}: ${result.stderr}`);
  return { seconds: (performance.now() - started) / 1000, stdout: result.stdout };
}

const tools = composefsTools();
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-erofs-bench-'));
try {
  const ours = path.join(work, 'ours.cfs');
  const theirs = path.join(work, 'theirs.cfs');
  // Warm the page cache once so that neither tool pays the first read of the tree.
  spawnSync('sh', ['-c', `find "${source}" -xdev -type f -size +64c -print0 | xargs -0 cat > /dev/null`], { stdio: 'ignore' });
  const a = timed([...tools.mkcomposefs, '--print-digest', source, theirs]);
  const b = timed([...sealroot, 'mkimage', '--print-digest', source, ours]);
  const size = fs.statSync(ours).size;
  console.log(`tree: ${source}; image ${(size / 2 ** 20).toFixed(1)} MiB; sealroot: ${sealroot.length === 1 ? 'dist/sealroot' : 'node src/cli/main.ts'}`);
  console.log(`mkcomposefs (${tools.version}): ${a.seconds.toFixed(2)} s; sealroot mkimage: ${b.seconds.toFixed(2)} s; ratio sealroot/mkcomposefs ${(b.seconds / a.seconds).toFixed(2)}x`);
  figures.fact('tree', source);
  figures.value('image size', size, { unit: 'bytes' });
  figures.comparison('mkimage', b.seconds, a.seconds, `mkcomposefs (${tools.version})`, { unit: 's', statistic: 'one run' });
  const dump = timed([...sealroot, 'inspect', ours]).stdout;
  const links = dump.split('\n').filter((line) => / @[0-7]+ /.test(line)).length;
  if (links === 0) {
    const identical = fs.readFileSync(ours).equals(fs.readFileSync(theirs));
    console.log(`images identical: ${identical} (digests ${b.stdout.trim()} / ${a.stdout.trim()})`);
    figures.fact('images identical', identical);
  } else {
    fs.writeFileSync(path.join(work, 'dump'), dump);
    const fromDump = path.join(work, 'from-dump.cfs');
    timed([...tools.mkcomposefs, '--from-file', path.join(work, 'dump'), fromDump]);
    const identical = fs.readFileSync(ours).equals(fs.readFileSync(fromDump));
    console.log(`${links} hard-link names (mkcomposefs of a directory drops hard links): ours equals mkcomposefs --from-file of our dump: ${identical}`);
    figures.value('hard-link names', links, { unit: 'names' });
    figures.fact('image equals mkcomposefs --from-file of our dump', identical);
  }

  // Checking: the strict reader over the whole image in memory (as the agent reads its sealed memfd), vs fsck.erofs.
  const started = performance.now();
  const summary = validateImage(fs.readFileSync(ours));
  const validateSeconds = (performance.now() - started) / 1000;
  const fsck = timed(['fsck.erofs', ours]);
  figures.value('inodes', summary.inodes, { unit: 'inodes' });
  figures.comparison('validate', validateSeconds, fsck.seconds, 'fsck.erofs', { unit: 's', statistic: 'one run' });
  console.log(`validateImage: ${summary.inodes} inodes in ${validateSeconds.toFixed(2)} s; fsck.erofs: ${fsck.seconds.toFixed(2)} s; ratio ${(validateSeconds / fsck.seconds).toFixed(2)}x`);
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
