// PCR selections in tpm2-tools syntax (`sha256:0,7+sha1:4`) and as TPML_PCR_SELECTION (Part 2 §10.9.7).
import { BANKS, type BankName, bankByAlg, PCR_COUNT } from './constants.ts';
import { Reader, TpmFormatError, Writer } from './marshal.ts';
import { isWhitespace } from '../text/chars.ts';

export interface BankSelection {
  bank: BankName;
  /** Ascending, without duplicates. */
  pcrs: number[];
}

export type PcrSelection = BankSelection[];

export class PcrSelectionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PcrSelectionError';
  }
}

const everyChar = (text: string, test: (c: string) => boolean): boolean => {
  for (const c of text) if (!test(c)) return false;
  return true;
};
/** [a-z0-9_] */
const isBankNameChar = (c: string): boolean => (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c === '_';
/** [0-9,\s] */
const isListChar = (c: string): boolean => (c >= '0' && c <= '9') || c === ',' || isWhitespace(c);

/** Parses `sha256:0,2,7` (banks joined with `+`, as tpm2_pcrread takes them). */
export function parsePcrSelection(text: string): PcrSelection {
  if (text.trim() === '') throw new PcrSelectionError('empty PCR selection');
  const selection: PcrSelection = [];
  for (const part of text.split('+')) {
    const trimmed = part.trim();
    const colon = trimmed.indexOf(':');
    const bank = trimmed.slice(0, Math.max(0, colon));
    const list = trimmed.slice(colon + 1);
    if (colon <= 0 || !everyChar(bank, isBankNameChar) || list === '' || !everyChar(list, isListChar)) {
      throw new PcrSelectionError(`not a PCR selection: '${part}' (expected e.g. sha256:0,7)`);
    }
    if (!Object.hasOwn(BANKS, bank)) throw new PcrSelectionError(`unknown PCR bank '${bank}' (banks: ${Object.keys(BANKS).join(', ')})`);
    const pcrs = list.split(',').map((item) => {
      const trimmed = item.trim();
      const pcr = Number(trimmed);
      if (trimmed === '' || !Number.isInteger(pcr) || pcr < 0 || pcr >= PCR_COUNT) throw new PcrSelectionError(`PCR index out of range in '${part}': '${item}' (0-${PCR_COUNT - 1})`);
      return pcr;
    });
    if (selection.some((entry) => entry.bank === bank)) throw new PcrSelectionError(`bank ${bank} selected twice`);
    selection.push({ bank: bank as BankName, pcrs: [...new Set(pcrs)].sort((a, b) => a - b) });
  }
  return selection;
}

export function formatPcrSelection(selection: PcrSelection): string {
  return selection.map((entry) => `${entry.bank}:${entry.pcrs.join(',')}`).join('+');
}

/** The selection with `pcr` added to every bank. */
export function withPcr(selection: PcrSelection, pcr: number): PcrSelection {
  return selection.map((entry) => ({ bank: entry.bank, pcrs: [...new Set([...entry.pcrs, pcr])].sort((a, b) => a - b) }));
}

export function marshalPcrSelection(selection: PcrSelection, writer = new Writer()): Writer {
  writer.u32(selection.length);
  for (const entry of selection) {
    const bitmap = Buffer.alloc(3);
    for (const pcr of entry.pcrs) bitmap[pcr >> 3]! |= 1 << (pcr & 7);
    writer.u16(BANKS[entry.bank].alg).u8(bitmap.length).bytes(bitmap);
  }
  return writer;
}

/** Unmarshals a TPML_PCR_SELECTION; banks the TPM names but sealroot does not know are kept as their algorithm id. */
export function unmarshalPcrSelection(reader: Reader): { bank: BankName | number; pcrs: number[] }[] {
  const count = reader.u32();
  if (count > 16) throw new TpmFormatError(`TPML_PCR_SELECTION with ${count} entries`);
  const result: { bank: BankName | number; pcrs: number[] }[] = [];
  for (let i = 0; i < count; i++) {
    const alg = reader.u16();
    const bitmap = reader.bytes(reader.u8());
    const pcrs: number[] = [];
    for (let pcr = 0; pcr < bitmap.length * 8; pcr++) if ((bitmap[pcr >> 3]! & (1 << (pcr & 7))) !== 0) pcrs.push(pcr);
    result.push({ bank: bankByAlg(alg) ?? alg, pcrs });
  }
  return result;
}

/** The (bank, pcr) pairs of a selection in the TPM's order: banks as listed, PCRs ascending (Part 1 §17.6.11). */
export function selectionOrder(selection: PcrSelection): { bank: BankName; pcr: number }[] {
  return selection.flatMap((entry) => entry.pcrs.map((pcr) => ({ bank: entry.bank, pcr })));
}
