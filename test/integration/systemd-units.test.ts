// The running system's units (systemd/): systemd itself accepts them, and the command line they run is one
// `sealroot trust sync` parses (a usage error would only show at the first boot).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { requireTools, ROOT, run } from '../helpers/tools.ts';

requireTools('systemd-analyze');
const UNITS = path.join(ROOT, 'systemd');
const NODE = path.join(ROOT, 'node_modules/.bin/node');
const MAIN = path.join(ROOT, 'src/cli/main.ts');

const execLines = (text: string) => [...text.matchAll(/^(ExecStart|ExecStop)=(.*)$/gm)].map((match) => ({ key: match[1]!, command: match[2]! }));

test('systemd-analyze verify accepts every unit (sealroot stands in as /bin/true: it is not installed on the host)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-units-'));
  try {
    const units = fs.readdirSync(UNITS).filter((name) => name.endsWith('.service'));
    assert.ok(units.length >= 2, units.join(', '));
    for (const unit of units) fs.writeFileSync(path.join(dir, unit), fs.readFileSync(path.join(UNITS, unit), 'utf8').replaceAll('/usr/bin/sealroot', '/bin/true'));
    const result = run('systemd-analyze', ['verify', ...units.map((unit) => path.join(dir, unit))]);
    assert.is(result.status, 0, result.stderr);
    assert.is(result.stderr.trim(), '', 'systemd-analyze printed warnings');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the shutdown unit syncs after ostree-finalize-staged (stopped in reverse start order) and the boot unit once per boot', () => {
  const shutdown = fs.readFileSync(path.join(UNITS, 'sealroot-trust-sync-shutdown.service'), 'utf8');
  assert.match(shutdown, /^Before=.*\bostree-finalize-staged\.service\b/m);
  assert.equal(execLines(shutdown).map((line) => line.key), ['ExecStart', 'ExecStop']);
  const boot = fs.readFileSync(path.join(UNITS, 'sealroot-trust-sync.service'), 'utf8');
  assert.equal(execLines(boot).map((line) => line.key), ['ExecStart']);
});

test('the units\' sealroot command lines parse: the TPM is the first thing missing, not a usage error', () => {
  for (const unit of fs.readdirSync(UNITS).filter((name) => name.endsWith('.service'))) {
    for (const { command } of execLines(fs.readFileSync(path.join(UNITS, unit), 'utf8')).filter((line) => line.command.startsWith('/usr/bin/sealroot '))) {
      const args = command.split(/\s+/).slice(1);
      const result = run(NODE, [MAIN, ...args, '--tpm', 'device:/dev/sealroot-no-such-tpm', '--policy-key', path.join(ROOT, 'keys/test-policy-key.pub.pem')]);
      assert.is(result.status, 1, `${unit}: ${command}: ${result.stderr}`);
      assert.match(result.stderr, /no TPM: \/dev\/sealroot-no-such-tpm does not exist/, `${unit}: ${result.stderr}`);
    }
  }
});

test.run();
