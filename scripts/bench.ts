// npm run bench [SECTION...]: runs each section in scripts/bench/ (a standalone script printing its own results,
// each figure next to the reference tool measured in the same run, as a ratio) and prints them in order.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const dir = path.join(import.meta.dirname, 'bench');
const all = fs.readdirSync(dir).filter((file) => file.endsWith('.ts')).sort();
const asked = process.argv.slice(2);
const sections = asked.length === 0 ? all : all.filter((file) => asked.includes(path.basename(file, '.ts')));
let failed = 0;
for (const file of sections) {
  process.stdout.write(`\n## ${path.basename(file, '.ts')}\n`);
  const result = spawnSync(process.execPath, [path.join(dir, file)], { stdio: 'inherit' });
  if (result.status !== 0) {
    failed += 1;
    process.stdout.write(`(section ${file} failed with exit ${result.status})\n`);
  }
}
process.exitCode = failed === 0 ? 0 : 1;
