// `sealroot predict` end to end (src/cli/main.ts): the captured OVMF boot's log, checked against the PCR values its
// TPM reported (--current-pcr), prints N=<hex> lines that `approve --pcr-value` takes; refusals are one line, exit 1.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OVMF_QEMU_INITRD_SUFFIX } from '../../src/measure/efi-stub.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const FIXTURE = path.join(ROOT, 'test/fixtures/measure/ovmf-6.12');
const BOOT = JSON.parse(fs.readFileSync(path.join(FIXTURE, 'boot.json'), 'utf8')) as { append: string; pcrs: Record<string, string> };
const current = (skip = -1) => Object.entries(BOOT.pcrs)
  .filter(([key]) => key.startsWith('sha256:') && Number(key.slice(7)) < 10 && Number(key.slice(7)) !== skip)
  .flatMap(([key, hex]) => ['--current-pcr', `${key.slice(7)}=${hex}`]);

function predict(args: string[]) {
  const result = spawnSync(process.execPath, [path.join(ROOT, 'src/cli/main.ts'), 'predict', '--event-log', path.join(FIXTURE, 'binary_bios_measurements'), ...args], { encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr.trim() };
}

test('predict prints N=<hex> per PCR: 0 and 7 from the checked log, 9 from the new initramfs', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'predict-'));
  try {
    const initrd = path.join(dir, 'initrd.img');
    fs.writeFileSync(initrd, 'a new initramfs');
    const result = predict(['--pcrs', 'sha256:0,7,9', '--initrd', initrd, '--cmdline', `${BOOT.append}${OVMF_QEMU_INITRD_SUFFIX}`, ...current()]);
    assert.is(result.status, 0, result.stderr);
    const lines = result.stdout.trim().split('\n');
    assert.is(lines.length, 3);
    assert.is(lines[0], `0=${BOOT.pcrs['sha256:0']}`);
    assert.is(lines[1], `7=${BOOT.pcrs['sha256:7']}`);
    assert.match(lines[2]!, /^9=[0-9a-f]{64}$/);
    assert.is.not(lines[2], `9=${BOOT.pcrs['sha256:9']}`, 'another initramfs, another PCR 9');
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test('predict refuses, in one line: a log the TPM values do not confirm, PCR 4 without --kernel, PCR 10, a missing value', () => {
  const cmdline = ['--cmdline', 'x'];
  const lying = current(7).concat(['--current-pcr', `7=${'00'.repeat(32)}`]);
  const refused = [
    [predict(['--pcrs', 'sha256:7', ...cmdline, ...lying]), /does not match the TPM/],
    [predict(['--pcrs', 'sha256:4', ...cmdline, ...current()]), /PCR 4 holds the kernel image's Authenticode hash/],
    [predict(['--pcrs', 'sha256:10', ...cmdline, ...current()]), /PCR 10 is not measured by the firmware/],
    [predict(['--pcrs', 'sha256:2', ...cmdline, ...current(2)]), /no sha256 value of PCR 2 from the TPM/],
  ] as const;
  for (const [result, reason] of refused) {
    assert.is(result.status, 1, result.stderr);
    assert.is(result.stdout, '');
    assert.match(result.stderr.split('\n').at(-1)!, reason);
  }
  assert.is(predict(['--pcrs', 'sha256:9', ...cmdline]).status, 2, 'neither --tpm nor --current-pcr');
  assert.is(predict(['--pcrs', 'sha256:9', ...cmdline, '--unchanged', '7', ...current()]).status, 2);
});

test.run();
