// Pure: what the Linux EFI stub (6.1+; read in 6.12 drivers/firmware/efi/libstub/efi-stub-helper.c) measures into
// PCR 9, and the PCR 9 value of a boot from the files that will boot.
//
// - efi_convert_cmdline() measures the loaded image's LoadOptions exactly as the boot loader passed them, before
//   any conversion: image->load_options for image->load_options_size bytes, i.e. UTF-16LE, and with the loader's
//   terminating UTF-16 NUL when the loader counts it in the size (OVMF's QEMU kernel loader and systemd-boot do).
//   Nothing is measured when the size is 0. Tagged event LOAD_OPTIONS_EVENT_TAG_ID, "LOADED_IMAGE::LoadOptions".
// - efi_load_initrd() measures the initrd it got through the LINUX_EFI_INITRD_MEDIA_GUID LoadFile2 device path (the
//   whole file, as loaded; not one loaded with the legacy initrd= option), after the command line. Tagged event
//   INITRD_EVENT_TAG_ID, "Linux initrd".
// Both go through the firmware's TCG2 HashLogExtendEvent: the digest is the hash of those bytes, in every bank.
// Measured in QEMU (test/fixtures/measure/ovmf-6.12): OVMF's loader passes the -append text followed by
// " initrd=initrd" when an initrd is given, then the UTF-16 NUL; /proc/cmdline shows the same text.
import { createHash } from 'node:crypto';
import { BANKS, type BankName } from '../tpm2/constants.ts';
import { EV_EVENT_TAG, type EventLog, type LogEvent, eventTypeName } from './event-log.ts';
import { extend, extendedEvents, MeasureError, resetValue } from './replay.ts';

export const EFI_STUB_PCR = 9;
/** drivers/firmware/efi/libstub/efistub.h */
export const INITRD_EVENT_TAG_ID = 0x8f3b22ec;
export const LOAD_OPTIONS_EVENT_TAG_ID = 0x8f3b22ed;
const TAG_TEXT = { [INITRD_EVENT_TAG_ID]: 'Linux initrd', [LOAD_OPTIONS_EVENT_TAG_ID]: 'LOADED_IMAGE::LoadOptions' } as const;

/** What OVMF's QEMU kernel loader (X86QemuLoadImageLib) appends to -append when QEMU was given -initrd. */
export const OVMF_QEMU_INITRD_SUFFIX = ' initrd=initrd';

/**
 * The LoadOptions bytes a loader passes for a command line: UTF-16LE (surrogate pairs beyond the BMP) with the
 * terminating UTF-16 NUL; an empty command line gives no load options at all (nothing measured).
 */
export function loadOptionsBytes(cmdline: string): Buffer {
  if (cmdline.includes('\0')) throw new MeasureError('a command line cannot contain a NUL character');
  return cmdline === '' ? Buffer.alloc(0) : Buffer.from(`${cmdline}\0`, 'utf16le');
}

/** The event data of a TCG_PCClientTaggedEvent as the stub logs it: id, size, the text with its NUL. */
export function taggedEventData(id: typeof INITRD_EVENT_TAG_ID | typeof LOAD_OPTIONS_EVENT_TAG_ID): Buffer {
  const text = Buffer.from(`${TAG_TEXT[id]}\0`, 'latin1');
  const header = Buffer.alloc(8);
  header.writeUInt32LE(id, 0);
  header.writeUInt32LE(text.length, 4);
  return Buffer.concat([header, text]);
}

export function digestOf(bank: BankName, bytes: Buffer): Buffer {
  return createHash(BANKS[bank].node).update(bytes).digest();
}

/** What the next boot's stub will measure: the load options' bytes and the initrd's digest in each bank. */
export interface StubInputs {
  /** loadOptionsBytes(cmdline as the loader passes it); empty: nothing measured. */
  loadOptions: Buffer;
  /** The initrd's digest per bank (digestOf over the whole file); undefined: no initrd. */
  initrd: Map<BankName, Buffer> | undefined;
}

/** The stub's PCR 9 events for these inputs, in the order it extends them: the command line, then the initrd. */
export function stubDigests(bank: BankName, inputs: StubInputs): Buffer[] {
  const digests: Buffer[] = [];
  if (inputs.loadOptions.length > 0) digests.push(digestOf(bank, inputs.loadOptions));
  if (inputs.initrd !== undefined) {
    const digest = inputs.initrd.get(bank);
    if (digest === undefined) throw new MeasureError(`no ${bank} digest of the initrd`);
    digests.push(digest);
  }
  return digests;
}

/** PCR 9 after the stub, when nothing else measures into it (checked against the current log: checkStubOnly). */
export function predictPcr9(bank: BankName, inputs: StubInputs): Buffer {
  let value = resetValue(bank, EFI_STUB_PCR);
  for (const digest of stubDigests(bank, inputs)) value = extend(bank, value, digest);
  return value;
}

function tagOf(event: LogEvent): number | undefined {
  if (event.type !== EV_EVENT_TAG || event.data.length < 8) return undefined;
  const id = event.data.readUInt32LE(0);
  return id === INITRD_EVENT_TAG_ID || id === LOAD_OPTIONS_EVENT_TAG_ID ? id : undefined;
}

/**
 * Refuses a current boot whose PCR 9 holds anything but the stub's tagged events (a boot loader or firmware that
 * measures into PCR 9 too): the prediction would then leave those out. Returns the stub's events of this boot.
 */
export function checkStubOnly(log: EventLog): { loadOptions: LogEvent | undefined; initrd: LogEvent | undefined } {
  const found: { loadOptions: LogEvent | undefined; initrd: LogEvent | undefined } = { loadOptions: undefined, initrd: undefined };
  for (const event of extendedEvents(log, EFI_STUB_PCR)) {
    const tag = tagOf(event);
    if (tag === undefined) {
      throw new MeasureError(`PCR ${EFI_STUB_PCR} holds a ${eventTypeName(event.type)} event (log byte ${event.offset}) that is not the Linux EFI stub's: cannot predict PCR ${EFI_STUB_PCR}`);
    }
    const key = tag === INITRD_EVENT_TAG_ID ? 'initrd' : 'loadOptions';
    if (found[key] !== undefined || (key === 'loadOptions' && found.initrd !== undefined)) {
      throw new MeasureError(`PCR ${EFI_STUB_PCR}: the EFI stub's events are repeated or out of order (log byte ${event.offset})`);
    }
    found[key] = event;
  }
  return found;
}
