// The event-log parser, its replay and the EFI stub's PCR 9 against a real boot: an OVMF + swtpm guest of the 6.12
// kernel (test/fixtures/measure/ovmf-6.12: its binary_bios_measurements and the PCR values its TPM reported).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EV_EFI_BOOT_SERVICES_APPLICATION, EV_NO_ACTION, EventLogError, parseEventLog } from '../../src/measure/event-log.ts';
import { checkStubOnly, INITRD_EVENT_TAG_ID, LOAD_OPTIONS_EVENT_TAG_ID, loadOptionsBytes, OVMF_QEMU_INITRD_SUFFIX, predictPcr9, taggedEventData } from '../../src/measure/efi-stub.ts';
import { authenticodeDigest, authenticodeRanges } from '../../src/measure/authenticode.ts';
import { fileDigests, readEventLogFile, readKernel } from '../../src/measure/files.ts';
import { formatPcrValue, predictPcr4, predictPcrs } from '../../src/measure/predict.ts';
import { checkReplay, replayPcr } from '../../src/measure/replay.ts';
import { pcrKey, type PcrValues } from '../../src/tpm2/client.ts';
import type { BankName } from '../../src/tpm2/constants.ts';
import { parsePcrSelection } from '../../src/tpm2/pcr-selection.ts';

const FIXTURE = path.resolve(import.meta.dirname, '../fixtures/measure/ovmf-6.12');
const LOG = fs.readFileSync(path.join(FIXTURE, 'binary_bios_measurements'));
const BOOT = JSON.parse(fs.readFileSync(path.join(FIXTURE, 'boot.json'), 'utf8')) as {
  append: string; procCmdline: string; initrdSha256: string; pcrs: Record<string, string>;
};
const tpm = (bank: BankName) => (pcr: number) => (BOOT.pcrs[`${bank}:${pcr}`] === undefined ? undefined : Buffer.from(BOOT.pcrs[`${bank}:${pcr}`]!, 'hex'));
const current: PcrValues = new Map(Object.entries(BOOT.pcrs).map(([key, hex]) => [key, Buffer.from(hex, 'hex')]));
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest();
const initrd = new Map<BankName, Buffer>([['sha256', Buffer.from(BOOT.initrdSha256, 'hex')]]);

test('the OVMF log: crypto-agile header, four banks, the firmware and EFI stub events', () => {
  const log = parseEventLog(LOG);
  assert.equal(log.banks, ['sha1', 'sha256', 'sha384', 'sha512']);
  assert.is(log.startupLocality, 0);
  assert.ok(log.events.length > 20, `${log.events.length} events`);
  assert.ok(log.events.some((event) => event.pcr === 4 && event.type === EV_EFI_BOOT_SERVICES_APPLICATION));
  for (const event of log.events) assert.is(event.digests.size, 4);
});

test('replaying the log gives every PCR the guest TPM reported (sha256 0-9, sha1 4 and 9)', () => {
  const log = parseEventLog(LOG);
  for (let pcr = 0; pcr <= 9; pcr++) assert.is(replayPcr(log, 'sha256', pcr).toString('hex'), BOOT.pcrs[`sha256:${pcr}`], `PCR ${pcr}`);
  checkReplay(log, 'sha1', [4, 9], tpm('sha1'));
  checkReplay(log, 'sha256', [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], tpm('sha256'));
});

test('a log that is not this boot\'s is refused by the replay check', () => {
  const log = parseEventLog(LOG);
  const other = (pcr: number) => (pcr === 7 ? Buffer.alloc(32, 1) : tpm('sha256')(pcr));
  assert.throws(() => checkReplay(log, 'sha256', [0, 7], other), /does not match the TPM: replaying it gives sha256:7=/);
  assert.throws(() => checkReplay(log, 'sha256', [10], tpm('sha256')), /holds 9e6f|does not match/);
  assert.throws(() => checkReplay(log, 'sha256', [16], tpm('sha256')), /no sha256 value of PCR 16/);
});

test('the EFI stub measured UTF-16LE load options with the NUL, then the initrd, as tagged events', () => {
  const log = parseEventLog(LOG);
  const { loadOptions, initrd: initrdEvent } = checkStubOnly(log);
  assert.ok(loadOptions !== undefined && initrdEvent !== undefined);
  // The loader's command line is -append plus OVMF's " initrd=initrd"; /proc/cmdline shows the same text.
  const cmdline = `${BOOT.append}${OVMF_QEMU_INITRD_SUFFIX}`;
  assert.is(cmdline, BOOT.procCmdline);
  assert.equal(loadOptions.digests.get('sha256'), sha256(loadOptionsBytes(cmdline)));
  assert.not.equal(loadOptions.digests.get('sha256'), sha256(Buffer.from(cmdline, 'utf16le')), 'the NUL is measured');
  assert.not.equal(loadOptions.digests.get('sha256'), sha256(Buffer.from(`${cmdline}\0`)), 'UTF-16, not UTF-8');
  assert.equal(loadOptions.data, taggedEventData(LOAD_OPTIONS_EVENT_TAG_ID));
  assert.equal(initrdEvent.digests.get('sha256'), initrd.get('sha256'));
  assert.equal(initrdEvent.data, taggedEventData(INITRD_EVENT_TAG_ID));
});

test('PCR 9 computed from the command line and the initrd digest equals what the guest TPM reported', () => {
  const value = predictPcr9('sha256', { loadOptions: loadOptionsBytes(BOOT.procCmdline), initrd });
  assert.is(value.toString('hex'), BOOT.pcrs['sha256:9']);
  const extraArg = predictPcr9('sha256', { loadOptions: loadOptionsBytes(`${BOOT.append} init=/bin/sh${OVMF_QEMU_INITRD_SUFFIX}`), initrd });
  assert.is.not(extraArg.toString('hex'), BOOT.pcrs['sha256:9']);
  const oneByte = Buffer.from(initrd.get('sha256')!);
  oneByte[0] ^= 1;
  assert.is.not(predictPcr9('sha256', { loadOptions: loadOptionsBytes(BOOT.procCmdline), initrd: new Map([['sha256', oneByte]]) }).toString('hex'), BOOT.pcrs['sha256:9']);
  assert.is(loadOptionsBytes('').length, 0, 'no load options: nothing measured');
  assert.throws(() => loadOptionsBytes('a\0b'), /NUL/);
});

test('predict: PCR 9 from the next boot\'s files, the other firmware PCRs from the checked log', () => {
  const log = parseEventLog(LOG);
  const next = { loadOptions: loadOptionsBytes(`${BOOT.append} next=1${OVMF_QEMU_INITRD_SUFFIX}`), initrd };
  const predicted = predictPcrs({ log, selection: parsePcrSelection('sha256:0,2,7,9'), current, next });
  assert.equal(predicted.map((p) => p.pcr), [0, 2, 7, 9]);
  assert.is(formatPcrValue(predicted[0]!), `0=${BOOT.pcrs['sha256:0']}`);
  assert.is(formatPcrValue(predicted[3]!), `9=${predictPcr9('sha256', next).toString('hex')}`);
  assert.is(formatPcrValue({ ...predicted[3]!, bank: 'sha1' }).startsWith('sha1:9='), true);
  // The same files as this boot give this boot's PCR 9.
  const same = predictPcrs({ log, selection: parsePcrSelection('sha256:9'), current, next: { loadOptions: loadOptionsBytes(BOOT.procCmdline), initrd } });
  assert.is(same[0]!.value.toString('hex'), BOOT.pcrs['sha256:9']);
  assert.throws(() => predictPcrs({ log, selection: parsePcrSelection('sha256:4,9'), current, next }), /PCR 4 holds the kernel image's Authenticode hash/);
  const kept = predictPcrs({ log, selection: parsePcrSelection('sha256:4'), current, next, unchanged: [4] });
  assert.is(kept[0]!.value.toString('hex'), BOOT.pcrs['sha256:4']);
  assert.throws(() => predictPcrs({ log, selection: parsePcrSelection('sha256:10'), current, next }), /PCR 10 is not measured by the firmware/);
  const lying: PcrValues = new Map(current);
  lying.set(pcrKey('sha256', 7), Buffer.alloc(32));
  assert.throws(() => predictPcrs({ log, selection: parsePcrSelection('sha256:7,9'), current: lying, next }), /does not match the TPM/);
});

/** Rewrites one record of the log (at its offset) and returns the new log. */
function withEventBytes(log: Buffer, offset: number, patch: (record: Buffer) => void): Buffer {
  const copy = Buffer.from(log);
  patch(copy.subarray(offset));
  return copy;
}

test('predict refuses a PCR 9 that holds another measurement than the stub\'s', () => {
  const parsed = parseEventLog(LOG);
  const stub = parsed.events.find((event) => event.pcr === 9)!;
  // Change the tag id of the first stub event: the record stays well-formed, it is just not the stub's any more.
  const dataOffset = stub.offset + 12 + 4 * (2 + 0) + 20 + 32 + 48 + 64 + 4;
  const changed = withEventBytes(LOG, dataOffset, (record) => record.writeUInt32LE(0x12345678, 0));
  const log = parseEventLog(changed);
  assert.throws(() => checkStubOnly(log), /PCR 9 holds a EV_EVENT_TAG event \(log byte \d+\) that is not the Linux EFI stub's/);
});

test('hostile logs: truncated, lying counts and sizes, unknown algorithms, too large', () => {
  assert.throws(() => parseEventLog(LOG.subarray(0, LOG.length - 1)), (error: unknown) => error instanceof EventLogError);
  assert.throws(() => parseEventLog(LOG.subarray(0, 10)), /truncated log/);
  const parsed = parseEventLog(LOG);
  const second = parsed.events[1]!.offset;
  // digest count of the second record
  assert.throws(() => parseEventLog(withEventBytes(LOG, second + 8, (r) => r.writeUInt32LE(5, 0))), /5 digests, the Spec ID event announced 4/);
  assert.throws(() => parseEventLog(withEventBytes(LOG, second + 12, (r) => r.writeUInt16LE(0x99, 0))), /algorithm 0x99/);
  assert.throws(() => parseEventLog(withEventBytes(LOG, second, (r) => r.writeUInt32LE(24, 0))), /PCR 24 out of range/);
  // event size of the second record: far beyond the end
  const sizeAt = second + 12 + 8 + 20 + 32 + 48 + 64;
  assert.throws(() => parseEventLog(withEventBytes(LOG, sizeAt, (r) => r.writeUInt32LE(0xffffffff, 0))), /truncated log/);
  assert.throws(() => parseEventLog(withEventBytes(LOG, 32, (r) => r.write('Spec ID Event02', 'latin1'))), /not a crypto-agile log/);
  assert.throws(() => parseEventLog(Buffer.alloc(5 << 20)), /at most/);
});

test('files: the event log read to EOF (securityfs reports size 0), file digests in every bank', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'measure-'));
  try {
    fs.writeFileSync(path.join(dir, 'log'), LOG);
    assert.equal(readEventLogFile(path.join(dir, 'log')), LOG);
    const digests = fileDigests(path.join(dir, 'log'), ['sha1', 'sha256']);
    assert.equal(digests.get('sha256'), sha256(LOG));
    assert.equal(digests.get('sha1'), createHash('sha1').update(LOG).digest());
    fs.symlinkSync('log', path.join(dir, 'link'));
    assert.throws(() => readEventLogFile(path.join(dir, 'link')), /ELOOP/);
    execFileSync('mkfifo', [path.join(dir, 'fifo')]);
    assert.throws(() => fileDigests(path.join(dir, 'fifo'), ['sha256']), /fifo: not a regular file/);
    assert.throws(() => readEventLogFile(path.join(dir, 'fifo')), /not a regular file/);
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});


// A second real boot: no -kernel; OVMF's EFI shell loaded the same kernel from a FAT disk (unpatched) with
// initrd= on its command line (test/fixtures/measure/ovmf-6.12-esp).
const ESP = path.resolve(import.meta.dirname, '../fixtures/measure/ovmf-6.12-esp');
const ESP_LOG = fs.readFileSync(path.join(ESP, 'binary_bios_measurements'));
const ESP_BOOT = JSON.parse(fs.readFileSync(path.join(ESP, 'boot.json'), 'utf8')) as {
  procCmdline: string; kernel: { version: string; sha256: string; authenticodeSha256: string }; pcrs: Record<string, string>;
};
const espCurrent: PcrValues = new Map(Object.entries(ESP_BOOT.pcrs).map(([key, hex]) => [key, Buffer.from(hex, 'hex')]));

test('ESP boot: the log replays to the TPM; the shell\'s load options (UTF-16LE + NUL) alone are in PCR 9', () => {
  const log = parseEventLog(ESP_LOG);
  checkReplay(log, 'sha256', [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], (pcr) => espCurrent.get(`sha256:${pcr}`));
  const { loadOptions, initrd: initrdEvent } = checkStubOnly(log);
  assert.is(initrdEvent, undefined, 'an initrd loaded through initrd= is not measured by the stub');
  assert.equal(loadOptions!.digests.get('sha256'), sha256(loadOptionsBytes(ESP_BOOT.procCmdline)));
  assert.is(predictPcr9('sha256', { loadOptions: loadOptionsBytes(ESP_BOOT.procCmdline), initrd: undefined }).toString('hex'), ESP_BOOT.pcrs['sha256:9']);
  // predict refuses to pretend that PCR 9 covers an initramfs this kind of boot does not measure, and the reverse.
  const withInitrd = { loadOptions: loadOptionsBytes(ESP_BOOT.procCmdline), initrd };
  assert.throws(() => predictPcrs({ log, selection: parsePcrSelection('sha256:9'), current: espCurrent, next: withInitrd }), /initramfs was not measured into PCR 9 \(loaded through initrd=/);
  assert.throws(() => predictPcrs({ log: parseEventLog(LOG), selection: parsePcrSelection('sha256:9'), current, next: { loadOptions: loadOptionsBytes(BOOT.procCmdline), initrd: undefined } }), /give the next one \(--initrd\)/);
});

test('ESP boot: PCR 4 predicted from the kernel\'s Authenticode hash equals the TPM\'s; another kernel gives another', () => {
  const log = parseEventLog(ESP_LOG);
  const apps = log.events.filter((event) => event.pcr === 4 && event.type === EV_EFI_BOOT_SERVICES_APPLICATION);
  assert.is(apps.length, 2, 'the shell (from the firmware volume), then the kernel');
  assert.is(apps.at(-1)!.digests.get('sha256')!.toString('hex'), ESP_BOOT.kernel.authenticodeSha256);
  const kernel = Buffer.from(ESP_BOOT.kernel.authenticodeSha256, 'hex');
  assert.is(predictPcr4(log, 'sha256', kernel).toString('hex'), ESP_BOOT.pcrs['sha256:4']);
  assert.is.not(predictPcr4(log, 'sha256', sha256(Buffer.from('another kernel'))).toString('hex'), ESP_BOOT.pcrs['sha256:4']);
  const next = { loadOptions: loadOptionsBytes(ESP_BOOT.procCmdline), initrd: undefined, kernel: new Map<BankName, Buffer>([['sha256', kernel]]) };
  const predicted = predictPcrs({ log, selection: parsePcrSelection('sha256:0,2,4,7,9'), current: espCurrent, next });
  assert.equal(predicted.map(formatPcrValue), [0, 2, 4, 7, 9].map((pcr) => `${pcr}=${ESP_BOOT.pcrs[`sha256:${pcr}`]}`));
  // The -kernel boot's log has a kernel measured after QEMU patched it: the file's hash would not predict it.
  assert.throws(() => predictPcr4(parseEventLog(LOG.subarray(0, 32 + 45)), 'sha256', kernel), /no EV_EFI_BOOT_SERVICES_APPLICATION/);
});

test('Authenticode: the real 6.12 kernel file hashes to what OVMF measured (when the QEMU tier\'s kernel is cached)', () => {
  const file = path.resolve(import.meta.dirname, `../../.cache/qemu/kernel/${ESP_BOOT.kernel.version}/vmlinuz`);
  if (!fs.existsSync(file)) {
    console.log(`  (skipped: ${file} not fetched; qemu/fetch-kernel)`);
    return;
  }
  const image = readKernel(file);
  assert.is(sha256(image).toString('hex'), ESP_BOOT.kernel.sha256, 'the cached kernel is the one the fixture booted');
  assert.is(authenticodeDigest(image, 'sha256').toString('hex'), ESP_BOOT.kernel.authenticodeSha256);
  assert.is.not(sha256(image).toString('hex'), ESP_BOOT.kernel.authenticodeSha256, 'not the plain file hash');
});

/** A minimal PE32+ image: headers (0x200), two sections, 16 bytes of data after them, a certificate table. */
function syntheticPe(): Buffer {
  const image = Buffer.alloc(0x200 + 0x100 + 0x80 + 16 + 24);
  image.write('MZ', 0, 'latin1');
  image.writeUInt32LE(0x80, 0x3c);
  image.writeUInt32LE(0x4550, 0x80);
  const coff = 0x84;
  image.writeUInt16LE(2, coff + 2); // sections
  image.writeUInt16LE(240, coff + 16); // SizeOfOptionalHeader (PE32+, 16 directories)
  const optional = coff + 20;
  image.writeUInt16LE(0x20b, optional);
  image.writeUInt32LE(0x200, optional + 60); // SizeOfHeaders
  image.writeUInt32LE(0xdeadbeef, optional + 64); // CheckSum
  image.writeUInt32LE(16, optional + 108);
  const certEntry = optional + 112 + 8 * 4;
  image.writeUInt32LE(0x200 + 0x100 + 0x80 + 16, certEntry);
  image.writeUInt32LE(24, certEntry + 4);
  const sections = optional + 240;
  // Listed in reverse file order: the hash takes them in file order.
  image.write('.data', sections, 'latin1');
  image.writeUInt32LE(0x80, sections + 16);
  image.writeUInt32LE(0x300, sections + 20);
  image.write('.text', sections + 40, 'latin1');
  image.writeUInt32LE(0x100, sections + 40 + 16);
  image.writeUInt32LE(0x200, sections + 40 + 20);
  for (let i = 0x200; i < image.length; i++) image[i] = i & 0xff;
  return image;
}

test('Authenticode: which bytes are hashed, and hostile images', () => {
  const image = syntheticPe();
  const optional = 0x84 + 20;
  const certEntry = optional + 112 + 32;
  assert.equal(authenticodeRanges(image), [[0, optional + 64], [optional + 68, certEntry], [certEntry + 8, 0x200], [0x200, 0x300], [0x300, 0x380], [0x380, 0x390]]);
  const digest = authenticodeDigest(image, 'sha256');
  const changed = (offset: number) => { const copy = Buffer.from(image); copy[offset] ^= 0xff; return authenticodeDigest(copy, 'sha256'); };
  assert.equal(changed(optional + 64), digest, 'CheckSum is not hashed');
  assert.equal(changed(certEntry + 2), digest, 'the Certificate Table entry is not hashed');
  assert.equal(changed(image.length - 1), digest, 'the certificate table is not hashed');
  assert.not.equal(changed(0x250), digest, 'section data is');
  assert.not.equal(changed(0x385), digest, 'data after the sections is');
  assert.not.equal(changed(0x40), digest, 'the headers are');
  assert.throws(() => authenticodeDigest(image.subarray(0, 0x350), 'sha256'), /section 0 runs past the end/);
  assert.throws(() => authenticodeDigest(Buffer.from('MZ'), 'sha256'), /e_lfanew at 60 is beyond/);
  assert.throws(() => authenticodeDigest(Buffer.alloc(64), 'sha256'), /no MZ header/);
  const huge = Buffer.from(image);
  huge.writeUInt32LE(0xffffffff, optional + 60);
  assert.throws(() => authenticodeDigest(huge, 'sha256'), /SizeOfHeaders/);
});

/** A crypto-agile log from scratch: the Spec ID header (sha256 only), then the given TCG_PCR_EVENT2 records. */
function syntheticLog(records: { pcr: number; type: number; digest: Buffer; data: Buffer }[]): Buffer {
  const spec = Buffer.alloc(16 + 4 + 4 + 4 + 4 + 1);
  spec.write('Spec ID Event03\0', 0, 'latin1');
  spec.writeUInt8(2, 21); // specVersionMajor
  spec.writeUInt8(2, 23); // uintnSize
  spec.writeUInt32LE(1, 24);
  spec.writeUInt16LE(0x0b, 28);
  spec.writeUInt16LE(32, 30);
  const header = Buffer.alloc(32);
  header.writeUInt32LE(EV_NO_ACTION, 4);
  header.writeUInt32LE(spec.length, 28);
  const parts: Buffer[] = [header, spec];
  for (const record of records) {
    const head = Buffer.alloc(14);
    head.writeUInt32LE(record.pcr, 0);
    head.writeUInt32LE(record.type, 4);
    head.writeUInt32LE(1, 8);
    head.writeUInt16LE(0x0b, 12);
    const size = Buffer.alloc(4);
    size.writeUInt32LE(record.data.length, 0);
    parts.push(head, record.digest, size, record.data);
  }
  return Buffer.concat(parts);
}

test('replay: an H-CRTM StartupLocality event starts PCR 0 at the locality; EV_NO_ACTION records are not extended', () => {
  const measured = sha256(Buffer.from('firmware'));
  const locality = Buffer.concat([Buffer.from('StartupLocality\0', 'latin1'), Buffer.from([3])]);
  const log = parseEventLog(syntheticLog([
    { pcr: 0, type: EV_NO_ACTION, digest: Buffer.alloc(32), data: locality },
    { pcr: 0, type: 0x8, digest: measured, data: Buffer.alloc(0) },
    { pcr: 7, type: EV_NO_ACTION, digest: sha256(Buffer.from('not extended')), data: Buffer.from('x') },
  ]));
  assert.equal(log.banks, ['sha256']);
  assert.is(log.startupLocality, 3);
  const start = Buffer.alloc(32);
  start[31] = 3;
  assert.equal(replayPcr(log, 'sha256', 0), sha256(Buffer.concat([start, measured])));
  assert.equal(replayPcr(log, 'sha256', 7), Buffer.alloc(32));
  assert.throws(() => replayPcr(log, 'sha1', 0), /no sha1 digests/);
});

test.run();
