// Parsing shared by the TPM subcommands: --pcr-value, --nv-index, --cap-pcr, --owner-auth, and collecting the PCR
// values a policy is computed from (given, or read from the TPM).
import { BANKS, type BankName, PCR_COUNT } from './constants.ts';
import { pcrKey, type PcrValues, type Tpm } from './client.ts';
import { type PcrSelection, selectionOrder } from './pcr-selection.ts';

export class OptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OptionError';
  }
}

/**
 * `N=<hex>` or `BANK:N=<hex>`: a predicted PCR value. Without a bank, the bank of the selection whose digest size
 * matches the value's length.
 */
export function parsePcrValues(texts: readonly string[], selection: PcrSelection): PcrValues {
  const values: PcrValues = new Map();
  for (const text of texts) {
    const match = /^(?:([a-z0-9_]+):)?(\d+)=(?:0x)?([0-9a-fA-F]+)$/.exec(text.trim());
    if (match === null) throw new OptionError(`bad --pcr-value '${text}' (expected N=<hex> or sha256:N=<hex>)`);
    const pcr = Number(match[2]);
    if (pcr >= PCR_COUNT) throw new OptionError(`bad --pcr-value '${text}': PCR ${pcr} out of range`);
    const bytes = Buffer.from(match[3]!, 'hex');
    if (match[3]!.length % 2 !== 0) throw new OptionError(`bad --pcr-value '${text}': odd number of hex digits`);
    let bank: BankName | undefined;
    if (match[1] !== undefined) {
      if (!Object.hasOwn(BANKS, match[1])) throw new OptionError(`unknown PCR bank '${match[1]}' in --pcr-value '${text}'`);
      bank = match[1] as BankName;
    } else {
      bank = selection.find((entry) => BANKS[entry.bank].size === bytes.length)?.bank;
      if (bank === undefined) throw new OptionError(`--pcr-value '${text}': ${bytes.length} bytes match no bank of the PCR selection`);
    }
    if (bytes.length !== BANKS[bank].size) throw new OptionError(`--pcr-value '${text}': a ${bank} value has ${BANKS[bank].size} bytes, not ${bytes.length}`);
    values.set(pcrKey(bank, pcr), bytes);
  }
  return values;
}

/**
 * The cap PCR as the next boot's initramfs will find it: the given value, else its reset value (zeros). Never the
 * current value, which after a trusted boot is the capped one.
 */
export function withCapDefault(values: PcrValues, selection: PcrSelection, capPcr: number): PcrValues {
  const result = new Map(values);
  for (const entry of selection) {
    const key = pcrKey(entry.bank, capPcr);
    if (!result.has(key)) result.set(key, Buffer.alloc(BANKS[entry.bank].size));
  }
  return result;
}

/** The values of every PCR of `selection`: the given ones, the others read from the TPM now. */
export async function completePcrValues(tpm: Tpm | undefined, selection: PcrSelection, given: PcrValues): Promise<PcrValues> {
  const missing: PcrSelection = selection
    .map((entry) => ({ bank: entry.bank, pcrs: entry.pcrs.filter((pcr) => !given.has(pcrKey(entry.bank, pcr))) }))
    .filter((entry) => entry.pcrs.length > 0);
  const values = new Map(given);
  if (missing.length > 0) {
    if (tpm === undefined) throw new OptionError(`no value for ${missing.map((e) => `${e.bank}:${e.pcrs.join(',')}`).join('+')} (give --pcr-value or --tpm)`);
    for (const [key, value] of await tpm.pcrRead(missing)) values.set(key, value);
  }
  for (const key of given.keys()) {
    if (!selectionOrder(selection).some(({ bank, pcr }) => pcrKey(bank, pcr) === key)) throw new OptionError(`--pcr-value for ${key}, which is not in the PCR selection`);
  }
  return values;
}

export function parseNvIndex(text: string): number {
  const value = Number(text);
  if (!/^(0x[0-9a-fA-F]+|\d+)$/.test(text) || value < 0x0100_0000 || value > 0x01ff_ffff) {
    throw new OptionError(`bad --nv-index '${text}' (an NV index handle, 0x01000000-0x01FFFFFF)`);
  }
  return value;
}

export function parseCapPcr(text: string): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value >= PCR_COUNT) throw new OptionError(`bad --cap-pcr '${text}'`);
  // PCRs 16 and 23 can be reset at locality 0 (PC Client PTP): a reset would undo the cap.
  if (value === 16 || value === 23) throw new OptionError(`--cap-pcr ${value} is resettable at locality 0 and cannot cap anything`);
  return value;
}

/** `hex:<hex>` or a plain string (as tpm2-tools takes auth values). */
export function parseAuth(text: string): Buffer {
  return text.startsWith('hex:') ? Buffer.from(text.slice(4), 'hex') : Buffer.from(text, 'utf8');
}
