// Pure: the PE/COFF image hash that UEFI firmware measures into PCR 4 for each boot application it loads
// (EV_EFI_BOOT_SERVICES_APPLICATION; PC Client PFP 10.4.4, edk2 SecurityPkg Tcg2Dxe MeasureBootPeCoff.c), which is
// the Authenticode hash ("Windows Authenticode Portable Executable Signature Format", "Calculating the PE Image
// Hash"): the headers without the CheckSum field and the Certificate Table directory entry, then every section's
// raw data in file order, then any data after the sections other than the attribute certificate table.
// Measured in QEMU: for the 6.12 cloud kernel loaded from a FAT disk by the EFI shell it equals the PCR 4 event
// (test/fixtures/measure/ovmf-6.12-esp). It is NOT what OVMF measures for QEMU -kernel, which patches the setup
// header first (shared/notes/qemu.md).
import { createHash } from 'node:crypto';
import { BANKS, type BankName } from '../tpm2/constants.ts';
import { MeasureError } from './replay.ts';

const PE32 = 0x10b;
const PE32_PLUS = 0x20b;
const CERTIFICATE_TABLE = 4;

function u16(image: Buffer, offset: number, what: string): number {
  if (offset < 0 || offset + 2 > image.length) throw new MeasureError(`PE image: ${what} at ${offset} is beyond its ${image.length} bytes`);
  return image.readUInt16LE(offset);
}

function u32(image: Buffer, offset: number, what: string): number {
  if (offset < 0 || offset + 4 > image.length) throw new MeasureError(`PE image: ${what} at ${offset} is beyond its ${image.length} bytes`);
  return image.readUInt32LE(offset);
}

/** The byte ranges the hash covers, in order (exported for the tests). */
export function authenticodeRanges(image: Buffer): [number, number][] {
  if (u16(image, 0, 'MZ signature') !== 0x5a4d) throw new MeasureError('not a PE image (no MZ header)');
  const pe = u32(image, 0x3c, 'e_lfanew');
  if (u32(image, pe, 'PE signature') !== 0x4550) throw new MeasureError(`not a PE image (no PE signature at ${pe})`);
  const coff = pe + 4;
  const sections = u16(image, coff + 2, 'NumberOfSections');
  const optionalSize = u16(image, coff + 16, 'SizeOfOptionalHeader');
  const optional = coff + 20;
  const magic = u16(image, optional, 'optional header magic');
  if (magic !== PE32 && magic !== PE32_PLUS) throw new MeasureError(`PE image: optional header magic 0x${magic.toString(16)}`);
  const checksum = optional + 64;
  const directoryCount = u32(image, optional + (magic === PE32_PLUS ? 108 : 92), 'NumberOfRvaAndSizes');
  const directories = optional + (magic === PE32_PLUS ? 112 : 96);
  const headersSize = u32(image, optional + 60, 'SizeOfHeaders');
  const sectionTable = optional + optionalSize;
  if (headersSize > image.length || sectionTable + 40 * sections > headersSize) throw new MeasureError('PE image: SizeOfHeaders does not hold the section table');
  const ranges: [number, number][] = [[0, checksum]];
  let certificateSize = 0;
  if (directoryCount > CERTIFICATE_TABLE) {
    const entry = directories + 8 * CERTIFICATE_TABLE;
    if (entry + 8 > headersSize) throw new MeasureError('PE image: the data directories run past SizeOfHeaders');
    certificateSize = u32(image, entry + 4, 'Certificate Table size');
    ranges.push([checksum + 4, entry], [entry + 8, headersSize]);
  } else {
    ranges.push([checksum + 4, headersSize]);
  }
  const raw: [number, number][] = [];
  for (let i = 0; i < sections; i++) {
    const header = sectionTable + 40 * i;
    const size = u32(image, header + 16, 'SizeOfRawData');
    const pointer = u32(image, header + 20, 'PointerToRawData');
    if (size === 0) continue;
    if (pointer + size > image.length) throw new MeasureError(`PE image: section ${i} runs past the end of the file`);
    raw.push([pointer, pointer + size]);
  }
  raw.sort((a, b) => a[0] - b[0]);
  ranges.push(...raw);
  const hashed = headersSize + raw.reduce((sum, [start, end]) => sum + end - start, 0);
  if (certificateSize > image.length - hashed) {
    if (certificateSize > image.length) throw new MeasureError('PE image: the certificate table is larger than the file');
  } else if (image.length > hashed + certificateSize) {
    ranges.push([hashed, image.length - certificateSize]);
  }
  return ranges;
}

export function authenticodeDigest(image: Buffer, bank: BankName): Buffer {
  const hash = createHash(BANKS[bank].node);
  for (const [start, end] of authenticodeRanges(image)) hash.update(image.subarray(start, end));
  return hash.digest();
}
