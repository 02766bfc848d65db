// The sealed profile (src/root/profile.ts): nothing persistent and unverified from the disk as /etc or /var.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkProfile } from '../../src/root/profile.ts';
import { LayoutError, type RootPlan, type SubdirPlan } from '../../src/root/plan.ts';

function plan(layout: RootPlan['layout'], etc: SubdirPlan, var_: SubdirPlan): RootPlan {
  return {
    layout, sysroot: '/sysroot', image: '/sysroot/i', objectDirs: ['/sysroot/o'], namedDigest: undefined, deployment: '/sysroot/d',
    rootTransient: false, rootTransientReadonly: false, etc, var: var_, sysrootReadonly: true, sysrootBindRequired: false, writeOstreeBooted: false,
  };
}

const bind: SubdirPlan = { kind: 'bind', source: '/sysroot/state/etc' };
const overlay: SubdirPlan = { kind: 'overlay', state: '/sysroot/state/etc' };
const transient: SubdirPlan = { kind: 'transient', lower: 'usr/etc' };
const none: SubdirPlan = { kind: 'none' };

test('the default profile accepts every plan', () => {
  for (const etc of [bind, overlay, transient, none]) for (const v of [bind, overlay, transient, none]) checkProfile('default', plan('composefs', etc, v));
});

test('sealed: transient or image /etc and /var pass; a bind or an overlay upper on the disk is refused, naming what and how', () => {
  for (const etc of [transient, none]) for (const v of [transient, none]) checkProfile('sealed', plan('composefs', etc, v));
  const refused = (pattern: RegExp) => (e: unknown) => e instanceof LayoutError && pattern.test(e.message);
  assert.throws(() => checkProfile('sealed', plan('composefs', overlay, transient)), refused(/refuses a persistent, unverified \/etc \(composefs plans an overlay with its upper layer in \/sysroot\/state\/etc on the disk\): use \[etc\] mount = "transient"/));
  assert.throws(() => checkProfile('sealed', plan('composefs', none, bind)), refused(/unverified \/var \(composefs plans a writable bind of/));
  assert.throws(() => checkProfile('sealed', plan('ostree', bind, bind)), refused(/\/etc .*\[etc\] transient = true in prepare-root\.conf/));
  assert.throws(() => checkProfile('sealed', plan('ostree', transient, bind)), refused(/\/var .*ostree has no transient \/var/));
});

test.run();
