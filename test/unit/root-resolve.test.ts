// Paths from the attacker-writable physical root resolve inside it, whatever its symlinks say.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LayoutError } from '../../src/root/plan.ts';
import { resolveUnder } from '../../src/root/resolve-under.ts';

test('absolute links restart at the root, .. stops at it, loops are refused, missing parts are kept when allowed', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-resolve-'));
  try {
    fs.mkdirSync(path.join(root, 'ostree/deploy/os/deploy/abc.0'), { recursive: true });
    fs.mkdirSync(path.join(root, 'ostree/boot.1/os/x'), { recursive: true });
    fs.symlinkSync('../../../deploy/os/deploy/abc.0', path.join(root, 'ostree/boot.1/os/x/0'));
    fs.symlinkSync('/ostree/deploy/os/deploy/abc.0', path.join(root, 'absolute'));
    fs.symlinkSync('../../../../../../../..', path.join(root, 'escape'));
    fs.symlinkSync('/etc', path.join(root, 'to-etc'));
    fs.symlinkSync('loop-b', path.join(root, 'loop-a'));
    fs.symlinkSync('loop-a', path.join(root, 'loop-b'));
    const deployment = path.join(root, 'ostree/deploy/os/deploy/abc.0');
    assert.is(resolveUnder(root, '/ostree/boot.1/os/x/0'), deployment);
    assert.is(resolveUnder(root, 'absolute'), deployment);
    assert.is(resolveUnder(root, 'escape'), root);
    assert.is(resolveUnder(root, '/../../..'), root);
    assert.is(resolveUnder(root, 'ostree/boot.1/os/x/0/../../var', { allowMissing: true }), path.join(root, 'ostree/deploy/os/var'));
    assert.throws(() => resolveUnder(root, 'to-etc'), (e: unknown) => e instanceof LayoutError && /\/etc does not exist under/.test(e.message));
    assert.is(resolveUnder(root, 'to-etc/passwd', { allowMissing: true }), path.join(root, 'etc/passwd'));
    assert.throws(() => resolveUnder(root, 'loop-a'), (e: unknown) => e instanceof LayoutError && /too many symbolic links/.test(e.message));
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test.run();
