import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError, parseBootConfig } from '../../src/config/boot-config.ts';

test('an empty file gives the defaults: TPM digest source', () => {
  const config = parseBootConfig('');
  assert.equal(config, {
    digest: { source: 'tpm' },
    tpm: { tcti: 'device:/dev/tpmrm0', pcrs: 'sha256:7', stateDir: '/etc/sealroot/tpm', policyKeyPath: undefined, capPcr: undefined },
    root: { layout: 'auto', sysroot: '/sysroot', maxImageSize: undefined, profile: 'default', image: undefined, validateImage: 'unsigned' },
    memory: { unswappable: 'require' },
  });
});

test('[memory] unswappable: require (default), prefer, off; anything else is refused', () => {
  for (const choice of ['require', 'prefer', 'off'] as const) {
    assert.is(parseBootConfig(`[memory]\nunswappable = "${choice}"\n`).memory.unswappable, choice);
  }
  assert.throws(() => parseBootConfig('[memory]\nunswappable = "yes"\n'), (e: unknown) => e instanceof ConfigError && /memory\.unswappable must be one of "require", "prefer", "off"/.test(e.message));
  assert.throws(() => parseBootConfig('[memory]\nswap = "off"\n'), (e: unknown) => e instanceof ConfigError && /unknown key memory\.swap/.test(e.message));
});

test('every key is read', () => {
  const config = parseBootConfig(`
[digest]
source = "tpm"
[tpm]
tcti = "swtpm:host=127.0.0.1,port=2321"
pcrs = "sha256:7,9"
state = "/etc/sealroot/state"
policy-key = "/etc/sealroot/key.pem"
cap-pcr = 15
[root]
layout = "ostree"
sysroot = "/mnt/root"
max-image-size = 67108864
profile = "sealed"
image = "/usr/lib/sealroot/root.cfs"
validate-image = "always"
`);
  assert.equal(config.tpm, { tcti: 'swtpm:host=127.0.0.1,port=2321', pcrs: 'sha256:7,9', stateDir: '/etc/sealroot/state', policyKeyPath: '/etc/sealroot/key.pem', capPcr: 15 });
  assert.equal(config.root, { layout: 'ostree', sysroot: '/mnt/root', maxImageSize: 67108864, profile: 'sealed', image: '/usr/lib/sealroot/root.cfs', validateImage: 'always' });
  assert.throws(() => parseBootConfig('[root]\nimage = "root.cfs"\n'), (e: unknown) => e instanceof ConfigError && /root\.image must be an absolute path/.test(e.message));
});

test('[root] profile: "default" or "sealed"; anything else is refused', () => {
  assert.is(parseBootConfig('[root]\nprofile = "default"\n').root.profile, 'default');
  assert.is(parseBootConfig('[root]\nprofile = "sealed"\n').root.profile, 'sealed');
  assert.throws(() => parseBootConfig('[root]\nprofile = "strict"\n'), (e: unknown) => e instanceof ConfigError && /root\.profile must be one of "default", "sealed", not "strict"/.test(e.message));
  assert.throws(() => parseBootConfig('[root]\nprofile = true\n'), (e: unknown) => e instanceof ConfigError && /root\.profile must be a non-empty string/.test(e.message));
});

test('[root] validate-image: "unsigned" (default) or "always"; anything else is refused', () => {
  assert.is(parseBootConfig('').root.validateImage, 'unsigned');
  assert.is(parseBootConfig('[root]\nvalidate-image = "always"\n').root.validateImage, 'always');
  assert.throws(() => parseBootConfig('[root]\nvalidate-image = "never"\n'), (e: unknown) => e instanceof ConfigError && /root\.validate-image must be one of "unsigned", "always", not "never"/.test(e.message));
});

test('the cmdline digest source needs the explicit allow key', () => {
  assert.throws(() => parseBootConfig('[digest]\nsource = "cmdline"\n'), (e: unknown) => e instanceof ConfigError && /allow-unauthenticated-cmdline/.test(e.message));
  assert.throws(() => parseBootConfig('[digest]\nsource = "cmdline"\nallow-unauthenticated-cmdline = false\n'), (e: unknown) => e instanceof ConfigError);
  assert.is(parseBootConfig('[digest]\nsource = "cmdline"\nallow-unauthenticated-cmdline = true\n').digest.source, 'cmdline');
  // The allow key alone changes nothing.
  assert.is(parseBootConfig('[digest]\nallow-unauthenticated-cmdline = true\n').digest.source, 'tpm');
});

test('typos, wrong types and bad values are refused with the key named', () => {
  const refused: [string, RegExp][] = [
    ['[tpm]\npcr = "sha256:7"\n', /unknown key tpm\.pcr/],
    ['[tmp]\n', /unknown section or key 'tmp'/],
    ['[digest]\nsource = "disk"\n', /digest\.source must be one of/],
    ['[tpm]\ncap-pcr = 24\n', /tpm\.cap-pcr must be an integer in 0\.\.23/],
    ['[tpm]\ncap-pcr = "15"\n', /tpm\.cap-pcr/],
    ['[tpm]\nstate = "relative/dir"\n', /tpm\.state must be an absolute path/],
    ['[tpm]\npcrs = "7,9"\n', /tpm\.pcrs must be a PCR selection/],
    ['[root]\nlayout = "auto"\nlayout = "ostree"\n', /not valid TOML/],
    ['[digest]\nallow-unauthenticated-cmdline = "yes"\n', /must be true or false/],
    ['[root]\nsysroot = ""\n', /non-empty string/],
    ['digest = 1\n', /\[digest\] must be a table/],
  ];
  for (const [text, pattern] of refused) {
    assert.throws(() => parseBootConfig(text), (e: unknown) => e instanceof ConfigError && pattern.test(e.message), text);
  }
});

test.run();
