// Pure: the firmware's TCG event log in the crypto-agile format (TCG PC Client Platform Firmware Profile 2.0,
// section 10: "Event Logging"), as Linux exposes it in /sys/kernel/security/tpm0/binary_bios_measurements.
//
//   first record   TCG_PCR_EVENT  (SHA-1 layout): pcrIndex u32, eventType u32, digest[20], eventSize u32, event
//                  an EV_NO_ACTION whose event is TCG_EfiSpecIDEventStruct ("Spec ID Event03"): the banks and
//                  their digest sizes the rest of the log uses
//   then           TCG_PCR_EVENT2: pcrIndex u32, eventType u32, TPML_DIGEST_VALUES {count u32, {hashAlg u16,
//                  digest}[count]}, eventSize u32, event
// Everything is little-endian (the log is written by the firmware, not marshalled for the TPM).
//
// The log is input, not truth: it is worth something only once its replay equals the TPM's PCRs (replay.ts).
// Every length is checked against what is left, and the log and its event count are bounded.
import { BANKS, bankByAlg, type BankName } from '../tpm2/constants.ts';

export const EV_NO_ACTION = 0x3;
export const EV_SEPARATOR = 0x4;
export const EV_EVENT_TAG = 0x6;
export const EV_EFI_BOOT_SERVICES_APPLICATION = 0x8000_0003;

/** OVMF's log is ~5 KiB; a real machine's a few tens. */
export const MAX_EVENT_LOG_BYTES = 4 << 20;
export const MAX_EVENTS = 65_536;

const SPEC_ID_SIGNATURE = 'Spec ID Event03\0';
const STARTUP_LOCALITY_SIGNATURE = 'StartupLocality\0';

export interface LogEvent {
  /** Byte offset of the record in the log (for messages). */
  offset: number;
  pcr: number;
  type: number;
  /** Digest per bank the log carries (crypto-agile records carry one per bank of the Spec ID event). */
  digests: Map<BankName, Buffer>;
  data: Buffer;
}

export interface EventLog {
  /** The banks of the Spec ID event, in its order. */
  banks: BankName[];
  /** Locality of the H-CRTM (StartupLocality event): PCR 0 starts at this value in its last byte. */
  startupLocality: number;
  events: LogEvent[];
}

export class EventLogError extends Error {
  readonly offset: number;

  constructor(offset: number, message: string) {
    super(`event log at byte ${offset}: ${message}`);
    this.name = 'EventLogError';
    this.offset = offset;
  }
}

class Reader {
  offset = 0;
  readonly #bytes: Buffer;

  constructor(bytes: Buffer) {
    this.#bytes = bytes;
  }

  get left(): number {
    return this.#bytes.length - this.offset;
  }

  #need(count: number, what: string): void {
    if (count > this.left) throw new EventLogError(this.offset, `${what}: ${count} bytes needed, ${this.left} left (truncated log)`);
  }

  u8(what: string): number {
    this.#need(1, what);
    return this.#bytes.readUInt8(this.offset++);
  }

  u16(what: string): number {
    this.#need(2, what);
    const value = this.#bytes.readUInt16LE(this.offset);
    this.offset += 2;
    return value;
  }

  u32(what: string): number {
    this.#need(4, what);
    const value = this.#bytes.readUInt32LE(this.offset);
    this.offset += 4;
    return value;
  }

  bytes(count: number, what: string): Buffer {
    this.#need(count, what);
    const value = this.#bytes.subarray(this.offset, this.offset + count);
    this.offset += count;
    return value;
  }
}

function parseSpecId(data: Buffer, offset: number): BankName[] {
  const r = new Reader(data);
  const fail = (why: string) => new EventLogError(offset, `Spec ID event: ${why}`);
  if (data.length < 16 || data.subarray(0, 16).toString('latin1') !== SPEC_ID_SIGNATURE) {
    throw fail('not a crypto-agile log (no "Spec ID Event03" signature; SHA-1-only logs are not supported)');
  }
  r.bytes(16, 'signature');
  r.u32('platformClass');
  r.u8('specVersionMinor');
  const major = r.u8('specVersionMajor');
  if (major !== 2) throw fail(`spec version ${major}, expected 2`);
  r.u8('specErrata');
  r.u8('uintnSize');
  const count = r.u32('numberOfAlgorithms');
  if (count === 0 || count > 16) throw fail(`${count} algorithms`);
  const banks: BankName[] = [];
  for (let i = 0; i < count; i++) {
    const alg = r.u16('algorithmId');
    const size = r.u16('digestSize');
    const bank = bankByAlg(alg);
    if (bank === undefined) throw fail(`unknown hash algorithm 0x${alg.toString(16)}`);
    if (BANKS[bank].size !== size) throw fail(`${bank} with a ${size}-byte digest`);
    if (banks.includes(bank)) throw fail(`${bank} listed twice`);
    banks.push(bank);
  }
  return banks;
}

/** Parses the whole log strictly: a malformed record anywhere rejects it (no partial logs). */
export function parseEventLog(bytes: Buffer): EventLog {
  if (bytes.length > MAX_EVENT_LOG_BYTES) throw new EventLogError(0, `${bytes.length} bytes (at most ${MAX_EVENT_LOG_BYTES})`);
  const r = new Reader(bytes);
  const headerPcr = r.u32('pcrIndex');
  const headerType = r.u32('eventType');
  r.bytes(20, 'SHA-1 digest');
  const headerSize = r.u32('eventSize');
  const headerData = r.bytes(headerSize, 'event');
  if (headerPcr !== 0 || headerType !== EV_NO_ACTION) {
    throw new EventLogError(0, `the first record is PCR ${headerPcr} type 0x${headerType.toString(16)}, not the EV_NO_ACTION Spec ID event`);
  }
  const banks = parseSpecId(headerData, 0);
  let startupLocality = 0;
  const events: LogEvent[] = [];
  while (r.left > 0) {
    const offset = r.offset;
    if (events.length >= MAX_EVENTS) throw new EventLogError(offset, `more than ${MAX_EVENTS} events`);
    const pcr = r.u32('pcrIndex');
    const type = r.u32('eventType');
    if (pcr >= 24) throw new EventLogError(offset, `PCR ${pcr} out of range`);
    const count = r.u32('digest count');
    if (count !== banks.length) throw new EventLogError(offset, `${count} digests, the Spec ID event announced ${banks.length}`);
    const digests = new Map<BankName, Buffer>();
    for (let i = 0; i < count; i++) {
      const alg = r.u16('hashAlg');
      const bank = bankByAlg(alg);
      if (bank === undefined || !banks.includes(bank)) throw new EventLogError(offset, `digest of algorithm 0x${alg.toString(16)}, not announced by the Spec ID event`);
      if (digests.has(bank)) throw new EventLogError(offset, `two ${bank} digests`);
      digests.set(bank, Buffer.from(r.bytes(BANKS[bank].size, `${bank} digest`)));
    }
    const size = r.u32('eventSize');
    const data = Buffer.from(r.bytes(size, 'event data'));
    if (type === EV_NO_ACTION && pcr === 0 && data.length === 17 && data.subarray(0, 16).toString('latin1') === STARTUP_LOCALITY_SIGNATURE) {
      // PC Client PFP 10.4.5.3: the H-CRTM's locality; TPM2_Startup from locality 3 or 4 leaves PCR 0 at that value.
      startupLocality = data[16]!;
    }
    events.push({ offset, pcr, type, digests, data });
  }
  return { banks, startupLocality, events };
}

/** For messages: `EV_EVENT_TAG` or `0x80000003`. */
export function eventTypeName(type: number): string {
  const names: Record<number, string> = {
    [EV_NO_ACTION]: 'EV_NO_ACTION', [EV_SEPARATOR]: 'EV_SEPARATOR', [EV_EVENT_TAG]: 'EV_EVENT_TAG',
    [EV_EFI_BOOT_SERVICES_APPLICATION]: 'EV_EFI_BOOT_SERVICES_APPLICATION',
  };
  return names[type] ?? `0x${type.toString(16)}`;
}
