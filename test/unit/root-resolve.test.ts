// Paths from the attacker-writable physical root resolve inside it, whatever its symlinks say (openat2
// RESOLVE_IN_ROOT relative to the root's fd: src/sys/confined-root.ts).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfinedRoot, UntrustedPathError } from '../../src/sys/confined-root.ts';
import { closeFd } from '../../src/sys/io.ts';

const refused = (pattern: RegExp) => (e: unknown) => e instanceof UntrustedPathError && pattern.test(e.message);

test('absolute links restart at the root, .. stops at it, loops are refused, a missing part is never joined past', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-resolve-'));
  const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-outside-'));
  const confined = ConfinedRoot.open(root);
  try {
    fs.mkdirSync(path.join(root, 'ostree/deploy/os/deploy/abc.0'), { recursive: true });
    fs.mkdirSync(path.join(root, 'ostree/deploy/os/var'), { recursive: true });
    fs.mkdirSync(path.join(root, 'ostree/boot.1/os/x'), { recursive: true });
    fs.mkdirSync(path.join(root, 'tmp'), { recursive: true });
    fs.symlinkSync('../../../deploy/os/deploy/abc.0', path.join(root, 'ostree/boot.1/os/x/0'));
    fs.symlinkSync('/ostree/deploy/os/deploy/abc.0', path.join(root, 'absolute'));
    fs.symlinkSync('../../../../../../../..', path.join(root, 'escape'));
    fs.symlinkSync('/etc', path.join(root, 'to-etc'));
    fs.symlinkSync('loop-b', path.join(root, 'loop-a'));
    fs.symlinkSync('loop-a', path.join(root, 'loop-b'));
    // Issue 12's escape: a missing component, then enough .. to climb out, then a directory that exists outside.
    const climb = `nx/${'../'.repeat(outside.split('/').length + 4)}${outside.slice(1)}`;
    fs.symlinkSync(climb, path.join(root, 'var-escape'));
    fs.symlinkSync(outside, path.join(root, 'var-absolute'));
    fs.symlinkSync(`tmp/${'../'.repeat(12)}${outside.slice(1)}`, path.join(root, 'var-dotdot'));
    fs.symlinkSync('/proc/self/root', path.join(root, 'magic'));
    const deployment = path.join(root, 'ostree/deploy/os/deploy/abc.0');
    assert.is(confined.canonical('ostree/boot.1/os/x/0'), deployment);
    assert.is(confined.canonical(path.join(root, 'ostree/boot.1/os/x/0')), deployment);
    assert.is(confined.canonical('absolute'), deployment);
    assert.is(confined.canonical('escape'), root);
    assert.is(confined.canonical('ostree/boot.1/os/x/0/../../var'), path.join(root, 'ostree/deploy/os/var'));
    // A missing target: the lexical path under the root is kept for the plan; opening it is refused (ENOENT).
    assert.is(confined.canonical('to-etc'), path.join(root, 'to-etc'));
    assert.throws(() => confined.openPath('to-etc/passwd'), refused(/does not exist/));
    assert.throws(() => confined.openPath('loop-a'), refused(/too many symbolic links/));
    // The escapes of the review: refused (nx is missing) or resolved inside the root, never to `outside`.
    assert.throws(() => confined.openPath('var-escape', { directory: true }), refused(/var-escape: does not exist/));
    assert.throws(() => confined.openPath('var-absolute', { directory: true }), refused(/does not exist/));
    assert.throws(() => confined.openPath('var-dotdot', { directory: true }), refused(/does not exist/));
    fs.mkdirSync(path.join(root, outside), { recursive: true });
    assert.is(confined.canonical('var-absolute', { directory: true }), path.join(root, outside));
    assert.is(confined.canonical('var-dotdot', { directory: true }), path.join(root, outside));
    // /proc/self/root inside the root is just a path there (no /proc in it): never the host's root.
    assert.throws(() => confined.openPath('magic'), refused(/does not exist/));
    // The last component is not followed when asked: the fd is the link itself.
    const link = confined.openPath('absolute', { followLast: false });
    try {
      assert.ok(fs.fstatSync(link).isSymbolicLink());
    } finally {
      closeFd(link);
    }
    // An absolute host path outside the root is refused before any open.
    assert.throws(() => confined.openPath(outside), refused(/is not under the physical root/));
    assert.is(ConfinedRoot.containing(path.join(root, 'a/b')), confined);
    assert.is(ConfinedRoot.containing(outside), undefined);
  } finally {
    confined.close();
    fs.rmSync(root, { recursive: true, force: true });
    fs.rmSync(outside, { recursive: true, force: true });
  }
  assert.is(ConfinedRoot.containing(root), undefined, 'closing unregisters');
});

test.run();
