// Pure: replaying an event log to PCR values, and checking the replay against the TPM's PCRs. A log is trusted for
// a PCR only when its replay ends at the value the TPM holds: the TPM cannot be made to lie about a PCR, the log can.
import { createHash } from 'node:crypto';
import { BANKS, type BankName } from '../tpm2/constants.ts';
import { EV_NO_ACTION, type EventLog, type LogEvent } from './event-log.ts';

export class MeasureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MeasureError';
  }
}

/** A PCR's value after reset: zeros, except PCR 0 after an H-CRTM at locality 3 or 4 (PC Client PFP 10.4.5.3). */
export function resetValue(bank: BankName, pcr: number, startupLocality = 0): Buffer {
  const value = Buffer.alloc(BANKS[bank].size);
  if (pcr === 0) value[value.length - 1] = startupLocality;
  return value;
}

/** TPM2_PCR_Extend in software: H(old || digest). */
export function extend(bank: BankName, value: Buffer, digest: Buffer): Buffer {
  return createHash(BANKS[bank].node).update(value).update(digest).digest();
}

/** The events of the log that were extended into `pcr` (EV_NO_ACTION records are logged, never extended). */
export function extendedEvents(log: EventLog, pcr: number): LogEvent[] {
  return log.events.filter((event) => event.pcr === pcr && event.type !== EV_NO_ACTION);
}

/** Replays the log's events for one PCR and bank from its reset value. */
export function replayPcr(log: EventLog, bank: BankName, pcr: number): Buffer {
  if (!log.banks.includes(bank)) throw new MeasureError(`the event log has no ${bank} digests (it has ${log.banks.join(', ')})`);
  let value = resetValue(bank, pcr, log.startupLocality);
  for (const event of extendedEvents(log, pcr)) value = extend(bank, value, event.digests.get(bank)!);
  return value;
}

/**
 * Throws unless the log's replay of every PCR in `pcrs` equals what the TPM reported (`tpm(pcr)`, undefined when
 * the TPM's value is unknown, which fails too).
 */
export function checkReplay(log: EventLog, bank: BankName, pcrs: readonly number[], tpm: (pcr: number) => Buffer | undefined): void {
  for (const pcr of pcrs) {
    const reported = tpm(pcr);
    if (reported === undefined) throw new MeasureError(`no ${bank} value of PCR ${pcr} from the TPM to check the event log against`);
    const replayed = replayPcr(log, bank, pcr);
    if (!replayed.equals(reported)) {
      throw new MeasureError(`the event log does not match the TPM: replaying it gives ${bank}:${pcr}=${replayed.toString('hex')}, `
        + `the TPM holds ${reported.toString('hex')} (a log of another boot, or something extended PCR ${pcr} without logging it)`);
    }
  }
}
