// dracut/90sealroot on the host: check() makes it opt-in, and the initramfs dracut builds with it holds what
// sealroot needs at boot (binary + libraries + loader, config, TPM state, kernel modules, the unit or the hook).
// The boot itself is proven in QEMU (qemu/run-tests boot-ok and tampered-image).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildDracutInitramfs } from '../../qemu/lib/dracut.ts';
import { fetchKernel, sealrootBinary } from '../../qemu/lib/paths.ts';
import { check, requireRoot, requireTools, ROOT, run } from '../helpers/tools.ts';

const MODULE = path.join(ROOT, 'dracut/90sealroot/module-setup.sh');

function moduleCheck(binary: string): number | null {
  return run('bash', ['-c', `. "${MODULE}"; check`], { env: { ...process.env, SEALROOT_BINARY: binary } }).status;
}

/** The file list of a dracut initramfs (no early cpio here: --no-early-microcode). */
function listing(image: string): string[] {
  return check('sh', ['-c', `zstd -dc "${image}" | cpio -t --quiet`]).split('\n');
}

test('check() is opt-in (255) when the binary exists, and refuses (1) without it', () => {
  assert.is(moduleCheck(path.join(ROOT, 'dist/sealroot')), 255);
  assert.is(moduleCheck('/nonexistent/sealroot'), 1);
});


for (const flow of ['systemd', 'shell'] as const) {
  test(`dracut (${flow} flow) installs sealroot, its libraries, config, policy key (not the state), modules and the ${flow === 'systemd' ? 'unit' : 'hook'}`, () => {
    requireRoot();
    requireTools('dracut', 'zstd', 'cpio');
    const kernel = fetchKernel();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-dracut-'));
    try {
      const state = path.join(dir, 'state');
      fs.mkdirSync(state);
      fs.writeFileSync(path.join(state, 'approval.test'), 'x');
      const { path: image } = buildDracutInitramfs({ kernel, stateDir: state, out: path.join(dir, 'initramfs.img'), flow });
      const files = listing(image);
      const has = (file: string): void => assert.ok(files.includes(file), `${file} is not in the initramfs`);
      has('usr/bin/sealroot');
      for (const library of ['libstdc++.so.6', 'libc.so.6', 'libm.so.6', 'libgcc_s.so.1']) {
        assert.ok(files.some((file) => file.endsWith(`/${library}`)), `${library} is not in the initramfs`);
      }
      assert.ok(files.some((file) => /(^|\/)ld-linux-x86-64\.so\.2$/.test(file)), 'the dynamic loader is not in the initramfs');
      has('etc/sealroot/boot.toml');
      has('etc/sealroot/policy-key.pem');
      // The approvals stay outside the initramfs (issue 14): inside it they would change the PCR 9 they predict.
      assert.not.ok(files.some((file) => file.startsWith('etc/sealroot/tpm')), 'the TPM state must not be in the initramfs');
      for (const module of ['fs/erofs/erofs.ko', 'fs/overlayfs/overlay.ko', 'drivers/block/loop.ko']) {
        assert.ok(files.some((file) => file.endsWith(`/kernel/${module}`)), `${module} is not in the initramfs`);
      }
      if (flow === 'systemd') {
        has('usr/lib/systemd/system/sealroot.service');
        has('etc/systemd/system/initrd-root-fs.target.wants/sealroot.service');
        assert.not.ok(files.some((file) => file.includes('pre-pivot') && file.includes('sealroot')), 'the shell hook must not be installed with systemd');
      } else {
        assert.ok(files.some((file) => /^(usr\/lib|var\/lib)\/dracut\/hooks\/pre-pivot\/10-sealroot-pre-pivot\.sh$/.test(file)), 'no pre-pivot hook');
        assert.not.ok(files.includes('usr/lib/systemd/system/sealroot.service'));
      }
      // The binary is the one the tests stage, unstripped although dracut strips by default (the module turns it
      // off: a stripped Node single executable segfaults).
      const extracted = check('sh', ['-c', `cd "${dir}" && zstd -dc "${image}" | cpio -id --quiet usr/bin/sealroot && cmp usr/bin/sealroot "${sealrootBinary()}" && echo same`]);
      assert.is(extracted.trim(), 'same');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}

test.run();
