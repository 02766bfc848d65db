// `sealroot predict`: the next boot's PCR values, printed as `N=<hex>` lines for `sealroot approve --pcr-value`.
import { StepError } from '../errors.ts';
import { DEFAULT_EVENT_LOG } from '../measure/files.ts';
import { predictNextBoot } from '../measure/next-boot.ts';
import { formatPcrValue } from '../measure/predict.ts';
import { EventLogError } from '../measure/event-log.ts';
import { MeasureError } from '../measure/replay.ts';
import { Tpm } from '../tpm2/client.ts';
import { parsePcrValues } from '../tpm2/options.ts';
import { parsePcrSelection } from '../tpm2/pcr-selection.ts';
import type { Command } from './command.ts';
import { parseCommandArgs, UsageError } from './command.ts';
import { tpmStep } from './tpm-options.ts';

export const predictCommand: Command = {
  name: 'predict',
  summary: 'predict the next boot\'s PCR values (EFI stub PCR 9 from the files, firmware PCRs from the checked event log)',
  usage: `Usage: sealroot predict --pcrs sha256:<list> --cmdline TEXT [--initrd FILE] [--kernel FILE] [--event-log FILE]
                        (--tpm TCTI | --current-pcr N=<hex>...) [--unchanged 4]

Prints one line N=<hex> per selected PCR (BANK:N=<hex> outside sha256): the values the next boot will have, for
'sealroot approve --pcr-value'. PCR 9 is computed as the Linux EFI stub (6.1+) measures it: the load options
(the command line as UTF-16LE with its NUL terminator), then the whole initrd. Every other PCR (0-8) is taken from
this boot's firmware event log, after replaying the log and comparing it with the TPM's values (--tpm), or with
values read from that boot's TPM (--current-pcr). PCR 4 (the kernel image): this boot's PCR 4 events with the
last boot application (the kernel) replaced by the Authenticode hash of --kernel, or carried over with
--unchanged 4; refused otherwise. PCRs 10 and up are refused. The cap PCR is not predicted (approve adds it).

  --pcrs SEL          PCR selection, tpm2-tools syntax, PCRs 0-9
  --cmdline TEXT      the command line as the boot loader passes it. OVMF's QEMU loader passes the -append text
                      followed by " initrd=initrd" (what /proc/cmdline shows); systemd-boot the entry's options
  --initrd FILE       the initramfs the next boot loads (omit when there is none)
  --kernel FILE       the kernel image the firmware or boot loader loads from disk, for PCR 4 (not for QEMU
                      -kernel: QEMU patches the image's setup header before OVMF measures it)
  --event-log FILE    this boot's event log (default ${DEFAULT_EVENT_LOG})
  --tpm TCTI          this boot's TPM, to check the log against
  --current-pcr N=HEX that boot's PCR values instead of --tpm (repeatable; PCR 9 and every carried-over PCR)
  --unchanged N       a PCR the update does not change although it could (only 4, the kernel image)`,
  async run(argv, { stdout, log }) {
    const { values: args } = parseCommandArgs(argv, {
      pcrs: { type: 'string' }, cmdline: { type: 'string' }, initrd: { type: 'string' }, kernel: { type: 'string' }, 'event-log': { type: 'string', default: DEFAULT_EVENT_LOG },
      tpm: { type: 'string' }, 'current-pcr': { type: 'string', multiple: true, default: [] }, unchanged: { type: 'string', multiple: true, default: [] },
    }, false);
    if (args.pcrs === undefined || args.cmdline === undefined) throw new UsageError('--pcrs and --cmdline are required');
    if ((args.tpm === undefined) === (args['current-pcr'].length === 0)) throw new UsageError('give either --tpm or --current-pcr (what the event log is checked against)');
    if (args.kernel !== undefined && args.unchanged.length > 0) throw new UsageError('--kernel and --unchanged 4 exclude each other');
    const unchanged = args.unchanged.map((text) => {
      if (text !== '4') throw new UsageError(`--unchanged ${text}: only PCR 4 (the kernel image) can be declared unchanged`);
      return 4;
    });
    return tpmStep('cannot predict the PCR values', async () => {
      const selection = parsePcrSelection(args.pcrs!);
      const tpm = args.tpm === undefined ? undefined : await Tpm.open(args.tpm);
      try {
        const predicted = await predictNextBoot({
          selection, eventLog: args['event-log'], initrd: args.initrd, kernel: args.kernel, cmdline: args.cmdline!, unchanged,
          currentPcrs: async (wanted) => (tpm === undefined ? parsePcrValues(args['current-pcr'], wanted) : tpm.pcrRead(wanted)),
        });
        for (const value of predicted) {
          log.info(`predict: ${value.bank}:${value.pcr} from ${value.source}`);
          stdout(`${formatPcrValue(value)}\n`);
        }
        return 0;
      } catch (error) {
        if (error instanceof MeasureError || error instanceof EventLogError) throw new StepError('predict', error.message);
        throw error;
      } finally {
        await tpm?.close();
      }
    });
  },
};
