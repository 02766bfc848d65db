// Pure: the PCR values of the next boot, for the PCR-bound read approvals of `sealroot approve`. An update of the
// kernel or initramfs changes only what the Linux EFI stub measures into PCR 9 (computed from the files that will
// boot) and the kernel image in PCR 4; every other firmware PCR (0-3, 5-8: firmware code and configuration, option
// ROMs, boot variables and GPT, Secure Boot state) is carried over from the current boot's event log, and only after
// that log's replay matched the TPM's PCRs.
import { pcrKey, type PcrValues } from '../tpm2/client.ts';
import type { PcrSelection } from '../tpm2/pcr-selection.ts';
import type { BankName } from '../tpm2/constants.ts';
import { EV_EFI_BOOT_SERVICES_APPLICATION, type EventLog } from './event-log.ts';
import { checkStubOnly, EFI_STUB_PCR, predictPcr9, type StubInputs } from './efi-stub.ts';
import { checkReplay, extend, extendedEvents, MeasureError, replayPcr, resetValue } from './replay.ts';

/** The PCR of the boot application's Authenticode hash (PC Client PFP: EV_EFI_BOOT_SERVICES_APPLICATION). */
export const KERNEL_IMAGE_PCR = 4;
/** PCRs 0-7 are the firmware's, 8 and 9 the OS loader's (PC Client PFP, 3.3.4). */
const BOOT_CHAIN_PCRS = 10;

export interface PredictInput {
  log: EventLog;
  /** The PCRs to predict (without the cap PCR, which approve sets to its reset value). */
  selection: PcrSelection;
  /** The TPM's current values of the log's PCRs (at least of every PCR carried over, and of PCR 9). */
  current: PcrValues;
  next: StubInputs & {
    /**
     * The next kernel image's Authenticode digest per bank (authenticode.ts), for PCR 4: it replaces the last boot
     * application this boot's firmware measured (the kernel, loaded last: after the shell, shim or boot loader).
     * Only for a kernel the firmware loads from disk: under QEMU -kernel OVMF measures a patched image.
     */
    kernel?: Map<BankName, Buffer>;
  };
  /**
   * PCRs the caller states are measured the same in the next boot although an update can change them: PCR 4 when
   * the kernel image stays the same (under QEMU -kernel, its initramfs size too: QEMU patches the setup header).
   */
  unchanged?: readonly number[];
}

export interface PredictedPcr {
  bank: BankName;
  pcr: number;
  value: Buffer;
  /** For people: where the value comes from. */
  source: string;
}

export function predictPcrs(input: PredictInput): PredictedPcr[] {
  const result: PredictedPcr[] = [];
  for (const { bank, pcrs } of input.selection) {
    const current = (pcr: number) => input.current.get(pcrKey(bank, pcr));
    for (const pcr of pcrs) {
      if (pcr >= BOOT_CHAIN_PCRS) {
        throw new MeasureError(`PCR ${pcr} is not measured by the firmware or the EFI stub before the initramfs runs: not predictable (select PCRs 0-9)`);
      }
      if (pcr === EFI_STUB_PCR) {
        // The current log's PCR 9 must be the stub's events only and replay to the TPM's value: then the same
        // firmware measures nothing else there, and the next value is the stub's events for the new files.
        const stub = checkStubOnly(input.log);
        checkReplay(input.log, bank, [pcr], current);
        // The stub measures an initrd only when it got it through LINUX_EFI_INITRD_MEDIA (a LoadFile2 from the
        // loader), never one loaded by the legacy initrd= option: then PCR 9 does not cover the initramfs at all.
        if (input.next.initrd !== undefined && stub.initrd === undefined) {
          throw new MeasureError(`this boot's initramfs was not measured into PCR ${pcr} (loaded through initrd=, not LINUX_EFI_INITRD_MEDIA): `
            + `PCR ${pcr} would not cover the next one either; boot it with a loader that provides the initrd by LoadFile2 (OVMF's QEMU loader, systemd-boot, GRUB 2.12)`);
        }
        if (input.next.initrd === undefined && stub.initrd !== undefined) {
          throw new MeasureError(`this boot's EFI stub measured an initramfs into PCR ${pcr}: give the next one (--initrd)`);
        }
        result.push({ bank, pcr, value: predictPcr9(bank, input.next), source: 'EFI stub: load options and initrd of the next boot' });
        continue;
      }
      if (pcr === KERNEL_IMAGE_PCR && input.next.kernel !== undefined) {
        checkReplay(input.log, bank, [pcr], current);
        const digest = input.next.kernel.get(bank);
        if (digest === undefined) throw new MeasureError(`no ${bank} Authenticode digest of the kernel`);
        result.push({ bank, pcr, value: predictPcr4(input.log, bank, digest), source: 'current event log with the next kernel image\'s Authenticode hash as its last boot application' });
        continue;
      }
      if (pcr === KERNEL_IMAGE_PCR && !(input.unchanged ?? []).includes(pcr)) {
        throw new MeasureError(`PCR ${pcr} holds the kernel image's Authenticode hash as the firmware loaded it, which this update may change: `
          + `leave PCR ${pcr} out of the selection, or state that the kernel image is unchanged (under QEMU -kernel, with the same initramfs size too)`);
      }
      checkReplay(input.log, bank, [pcr], current);
      result.push({ bank, pcr, value: replayPcr(input.log, bank, pcr), source: 'current event log, checked against the TPM' });
    }
  }
  return result;
}

/** PCR 4 of this boot's log with its last EV_EFI_BOOT_SERVICES_APPLICATION (the kernel) measured as `kernel`. */
export function predictPcr4(log: EventLog, bank: BankName, kernel: Buffer): Buffer {
  const events = extendedEvents(log, KERNEL_IMAGE_PCR);
  const last = events.findLastIndex((event) => event.type === EV_EFI_BOOT_SERVICES_APPLICATION);
  if (last < 0) throw new MeasureError(`PCR ${KERNEL_IMAGE_PCR} holds no EV_EFI_BOOT_SERVICES_APPLICATION event: cannot tell which measurement is the kernel`);
  let value = resetValue(bank, KERNEL_IMAGE_PCR);
  events.forEach((event, i) => { value = extend(bank, value, i === last ? kernel : event.digests.get(bank)!); });
  return value;
}

/** `N=<hex>` for the sha256 bank (the default of --pcr-value), `BANK:N=<hex>` for another. */
export function formatPcrValue(predicted: PredictedPcr): string {
  return `${predicted.bank === 'sha256' ? '' : `${predicted.bank}:`}${predicted.pcr}=${predicted.value.toString('hex')}`;
}
