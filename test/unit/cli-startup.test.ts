// The CLI entry loads a command's modules only when that command runs (issue 15, startup): what `sealroot
// --version` and `sealroot boot` evaluate is recorded by a module hook in a child process running the sources
// (the bundle keeps the same lazy import() boundaries; `npm run bench startup` measures the executable).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { COMMANDS } from '../../src/cli/commands.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const NODE = path.join(ROOT, 'node_modules/.bin/node');
const MAIN = path.join(ROOT, 'src/cli/main.ts');

// Records every module the child loads (file URLs relative to the repository) and the Node builtins it loaded.
const RECORDER = `data:text/javascript,${encodeURIComponent(`
import { registerHooks } from 'node:module';
import { writeFileSync } from 'node:fs';
const seen = [];
registerHooks({ load(url, context, nextLoad) { seen.push(url); return nextLoad(url, context); } });
process.on('exit', () => writeFileSync(process.env.SEALROOT_LOADS_OUT, JSON.stringify({
  modules: seen,
  builtins: process.moduleLoadList.filter((name) => name.startsWith('NativeModule ')).map((name) => name.slice(13)),
})));
`)}`;

interface Loads {
  status: number | null;
  stdout: string;
  modules: string[];
  builtins: string[];
}

function loadsOf(args: string[]): Loads {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-loads-')), 'loads.json');
  try {
    const result = spawnSync(NODE, ['--import', RECORDER, MAIN, ...args], {
      encoding: 'utf8', env: { ...process.env, SEALROOT_LOADS_OUT: out, SEALROOT_KMSG: '0' },
    });
    const recorded = JSON.parse(fs.readFileSync(out, 'utf8')) as { modules: string[]; builtins: string[] };
    const prefix = `${new URL(`file://${ROOT}/`).href}`;
    return {
      status: result.status, stdout: result.stdout, builtins: recorded.builtins,
      modules: recorded.modules.filter((url) => url.startsWith(prefix)).map((url) => url.slice(prefix.length)),
    };
  } finally {
    fs.rmSync(path.dirname(out), { recursive: true, force: true });
  }
}

test('every registered command loads, under its registered name, and no name is registered twice', async () => {
  const names = COMMANDS.map((entry) => entry.name);
  assert.is(new Set(names).size, names.length);
  for (const entry of COMMANDS) {
    const command = await entry.load();
    assert.is(command.name, entry.name);
    assert.type(command.run, 'function');
    assert.ok(command.summary.length > 0 && command.usage.startsWith('Usage: sealroot'), entry.name);
  }
});

test('--version evaluates the entry and nothing of any command (no node:crypto, node:zlib, node:sea)', () => {
  const loads = loadsOf(['--version']);
  assert.is(loads.status, 0);
  assert.match(loads.stdout, /^sealroot \d+\.\d+\.\d+\n$/);
  assert.ok(loads.modules.includes('src/cli/main.ts'), `the recorder saw: ${loads.modules.join(' ')}`);
  assert.equal(loads.modules.filter((file) => file.startsWith('src/')).sort(), [
    'src/cli/command.ts', 'src/cli/commands.ts', 'src/cli/main.ts', 'src/errors.ts', 'src/log.ts', 'src/process-exit.ts', 'src/stdio.ts',
    'src/sys/errno.ts', 'src/version.ts',
  ]);
  for (const builtin of ['crypto', 'zlib', 'sea']) assert.not.ok(loads.builtins.includes(builtin), `node:${builtin} loaded`);
});

test('a command loads its own modules only: boot does not evaluate the image writer or another command', () => {
  const boot = loadsOf(['boot', '--help']);
  assert.is(boot.status, 0);
  assert.match(boot.stdout, /^Usage: sealroot boot/);
  assert.ok(boot.modules.includes('src/boot.ts'), `the recorder saw: ${boot.modules.join(' ')}`);
  const otherCommands = COMMANDS.filter((entry) => entry.name !== 'boot').map((entry) => `src/cli/${entry.name}.ts`);
  for (const file of ['src/erofs/writer.ts', 'src/erofs/source.ts', 'src/erofs/dumpfile.ts', ...otherCommands]) {
    assert.not.ok(boot.modules.includes(file), `sealroot boot loaded ${file}`);
  }
  // The TPM's side is loaded when the TPM read starts, after the copy has started (node:crypto not at all), and the
  // EROFS validator only for an image validated at boot (src/boot.ts).
  for (const file of ['src/boot/trust-source.ts', 'src/tpm2/client.ts', 'src/erofs/validate.ts']) {
    assert.not.ok(boot.modules.includes(file), `boot --help loaded ${file}`);
  }
  assert.not.ok(boot.builtins.includes('crypto'), 'boot --help loaded node:crypto');
  // --help lists every command, so it loads them all.
  const help = loadsOf(['--help']);
  for (const entry of COMMANDS) assert.ok(help.modules.includes(`src/cli/${entry.name}.ts`), `--help did not load ${entry.name}`);
  assert.match(help.stdout, /^  mkimage +make a composefs image/m);
});

test('a command that loaded the syscall shim ends through it (exit_group) after the \'exit\' listeners, with its status and all its output', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-exit-'));
  try {
    const file = path.join(dir, 'data');
    fs.writeFileSync(file, Buffer.alloc(100_000, 7));
    // The recorder's file is written by an 'exit' listener: loadsOf() fails if none ran.
    const digest = loadsOf(['digest', file]);
    assert.is(digest.status, 0);
    assert.ok(digest.modules.includes('src/sys/native.ts'), 'the shim was loaded');
    assert.match(digest.stdout, new RegExp(`^sha256:[0-9a-f]{64} ${file}\n$`));
    const refused = loadsOf(['load', '--unswappable=off', `--expect=sha256:${'0'.repeat(64)}`, file]);
    assert.is(refused.status, 1);
    assert.ok(refused.modules.includes('src/sys/native.ts'), 'the shim was loaded');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
