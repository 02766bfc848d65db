// The initramfs built by dracut (bookworm's dracut 059, systemd flow) with dracut/90sealroot and the test-only
// qemu/dracut/91sealroot-test. dracut only looks for modules under $dracutbasedir/modules.d: we point it at a
// private copy of /usr/lib/dracut with our two modules linked in, so the system's dracut is never changed.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PHYSICAL_STATE_DIR } from './disk.ts';
import { BOOT_CONFIG, GUEST_MODULES, GUEST_STATE_DIR, PREPARE_ROOT_CONF, testFiles } from './guest.ts';
import { CACHE, ROOT, sealrootBinary, type Kernel } from './paths.ts';

export const DRACUT_BASE = '/usr/lib/dracut';

/** A hash of both dracut modules' files and of this builder: part of the cached initramfs's name. */
export function dracutModulesKey(): string {
  const hash = createHash('sha256');
  for (const dir of [path.join(ROOT, 'dracut/90sealroot'), path.join(ROOT, 'qemu/dracut/91sealroot-test')]) {
    for (const name of fs.readdirSync(dir).sort()) hash.update(name).update(fs.readFileSync(path.join(dir, name)));
  }
  // The test files it carries (testFiles(), e.g. unseal.sh) are part of what the cached image holds.
  for (const [name, content] of Object.entries(testFiles())) hash.update(name).update(content);
  hash.update(fs.readFileSync(import.meta.filename));
  return hash.digest('hex').slice(0, 12);
}

function dracutBase(work: string): string {
  if (!fs.existsSync(path.join(DRACUT_BASE, 'modules.d'))) {
    throw new Error(`${DRACUT_BASE}/modules.d is missing: install dracut-core (scripts/apt-packages.txt)`);
  }
  const base = path.join(work, 'base');
  fs.cpSync(DRACUT_BASE, base, { recursive: true, verbatimSymlinks: true });
  fs.symlinkSync(path.join(ROOT, 'dracut/90sealroot'), path.join(base, 'modules.d/90sealroot'));
  fs.symlinkSync(path.join(ROOT, 'qemu/dracut/91sealroot-test'), path.join(base, 'modules.d/91sealroot-test'));
  return base;
}

export interface DracutOptions {
  kernel: Kernel;
  /** A sealroot state directory put beside boot.toml, which the module must leave out (the state is on the disk). */
  stateDir?: string;
  out: string;
  /** Without sealroot (for the size comparison): the same image minus both sealroot modules. */
  withoutSealroot?: boolean;
  /** systemd in the initramfs (sealroot.service), or dracut's shell flow (the pre-pivot hook). Default systemd. */
  flow?: 'systemd' | 'shell';
}

/** Builds a minimal initramfs (systemd or shell flow); returns its path and dracut's wall time. */
export function buildDracutInitramfs(options: DracutOptions): { path: string; millis: number } {
  // A private work directory per build: builds may run side by side (test tiers, benchmark).
  fs.mkdirSync(path.join(CACHE, 'dracut'), { recursive: true });
  const work = fs.mkdtempSync(path.join(CACHE, 'dracut/work-'));
  const base = dracutBase(work);
  const confdir = path.join(work, 'etc-sealroot');
  fs.mkdirSync(confdir, { recursive: true });
  // The approvals are read from the physical root (qemu/lib/disk.ts), not from the initramfs.
  const bootConfig = BOOT_CONFIG.replace(`state = "${GUEST_STATE_DIR}"`, `state = "/sysroot/${PHYSICAL_STATE_DIR}"`);
  if (bootConfig === BOOT_CONFIG) throw new Error('dracut: boot.toml names no state directory to move');
  fs.writeFileSync(path.join(confdir, 'boot.toml'), bootConfig);
  // The TEST policy key's public half (keys/README.md): what a vendor's initramfs would carry.
  fs.copyFileSync(path.join(ROOT, 'keys/test-policy-key.pub.pem'), path.join(confdir, 'policy-key.pem'));
  if (options.stateDir !== undefined) fs.cpSync(options.stateDir, path.join(confdir, 'tpm'), { recursive: true });
  const testDir = path.join(work, 'test-files');
  fs.mkdirSync(testDir);
  for (const [name, content] of Object.entries(testFiles())) fs.writeFileSync(path.join(testDir, name), content);
  fs.writeFileSync(path.join(testDir, 'prepare-root.conf'), PREPARE_ROOT_CONF);
  fs.mkdirSync(path.join(work, 'tmp'));
  fs.mkdirSync(path.join(work, 'conf.d'));
  const sealroot = options.withoutSealroot === true ? [] : ['sealroot', 'sealroot-test'];
  const systemd = options.flow === 'shell' ? [] : ['systemd', 'systemd-initrd', 'dracut-systemd'];
  const started = performance.now();
  const result = spawnSync('dracut', [
    '--force', '--no-hostonly', '--no-hostonly-cmdline', '--no-early-microcode',
    '--kver', options.kernel.version, '--kmoddir', options.kernel.modules,
    '--modules', ['base', 'rootfs-block', 'udev-rules', 'kernel-modules', ...systemd, ...sealroot].join(' '),
    ...(options.flow === 'shell' ? ['--omit', 'systemd systemd-initrd dracut-systemd'] : []),
    '--add-drivers', [...GUEST_MODULES, 'virtio_pci'].join(' '),
    '--compress', 'zstd -10 -T0', '--tmpdir', path.join(work, 'tmp'), '--conf', '/dev/null', '--confdir', path.join(work, 'conf.d'),
    options.out,
  ], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, dracutbasedir: base, SEALROOT_BINARY: sealrootBinary(), SEALROOT_CONFDIR: confdir, SEALROOT_TEST_FILES: testDir },
  });
  const millis = performance.now() - started;
  fs.rmSync(work, { recursive: true, force: true });
  if (result.status !== 0) {
    const output = `${result.stdout}${result.stderr}`.trim().split('\n').slice(-30).join('\n');
    throw new Error(`dracut failed (exit ${result.status}${result.error === undefined ? '' : `, ${result.error.message}`}):\n${output}`);
  }
  return { path: options.out, millis };
}
