// The running system's side of a kernel or initramfs update: the next boot's PCR values from the files that will
// boot and this boot's event log, checked against this boot's TPM before it is trusted.
import type { PcrValues } from '../tpm2/client.ts';
import type { PcrSelection } from '../tpm2/pcr-selection.ts';
import { authenticodeDigest } from './authenticode.ts';
import { loadOptionsBytes } from './efi-stub.ts';
import { parseEventLog } from './event-log.ts';
import { fileDigests, readEventLogFile, readKernel } from './files.ts';
import { predictPcrs, type PredictedPcr } from './predict.ts';

export interface NextBootOptions {
  selection: PcrSelection;
  /** This boot's event log (binary_bios_measurements or a copy). */
  eventLog: string;
  /** The initramfs the next boot loads; undefined: none. */
  initrd: string | undefined;
  /** The kernel image the firmware will load from disk (PCR 4); undefined: PCR 4 is not computed. */
  kernel?: string | undefined;
  /** The command line exactly as the boot loader will pass it to the EFI stub. */
  cmdline: string;
  /** The TPM's values of the PCRs the log is checked on, for every bank of the selection (PCRs 0-9 suffice). */
  currentPcrs(selection: PcrSelection): Promise<PcrValues>;
  unchanged?: readonly number[];
}

export async function predictNextBoot(options: NextBootOptions): Promise<PredictedPcr[]> {
  const log = parseEventLog(readEventLogFile(options.eventLog));
  const kernel = options.kernel === undefined ? undefined : readKernel(options.kernel);
  const banks = options.selection.map((entry) => entry.bank);
  const current = await options.currentPcrs(options.selection.map((entry) => ({ bank: entry.bank, pcrs: [...new Set([...entry.pcrs, 9])].sort((a, b) => a - b) })));
  return predictPcrs({
    log, selection: options.selection, current,
    next: {
      loadOptions: loadOptionsBytes(options.cmdline), initrd: options.initrd === undefined ? undefined : fileDigests(options.initrd, banks),
      ...(kernel === undefined ? {} : { kernel: new Map(banks.map((bank) => [bank, authenticodeDigest(kernel, bank)])) }),
    },
    ...(options.unchanged === undefined ? {} : { unchanged: options.unchanged }),
  });
}
