// `sealroot pcr read|extend`: PCR access for tests and debugging (values as tpm2_pcrread prints them).
import { createHash, getHashes } from 'node:crypto';
import { Tpm } from '../tpm2/client.ts';
import { tpmStep } from './tpm-options.ts';
import { BANKS, type BankName, PCR_COUNT } from '../tpm2/constants.ts';
import { OptionError } from '../tpm2/options.ts';
import { parsePcrSelection, selectionOrder } from '../tpm2/pcr-selection.ts';
import { DEFAULT_TCTI } from '../tpm2/transport.ts';
import type { Command } from './command.ts';
import { parseCommandArgs, UsageError } from './command.ts';

export const pcrCommand: Command = {
  name: 'pcr',
  summary: 'read or extend PCRs (tests, debugging)',
  usage: `Usage: sealroot pcr read [--tpm TCTI] SELECTION
       sealroot pcr extend [--tpm TCTI] PCR:BANK=HEX[,BANK=HEX]...
       sealroot pcr extend [--tpm TCTI] --data TEXT PCR

read     prints one line per PCR, BANK:N=<hex>, in selection order (SELECTION as tpm2_pcrread: sha256:0,7+sha1:4)
extend   extends PCR with the given digests (tpm2_pcrextend syntax), or with the digest of TEXT in every allocated bank
         (as tpm2_pcrevent does)

  --tpm TCTI   device:/dev/tpmrm0 (default), device:/dev/tpm0, swtpm:host=H,port=P, mssim:host=H,port=P`,
  async run(argv, { stdout }) {
    const { values: args, positionals } = parseCommandArgs(argv, { tpm: { type: 'string', default: DEFAULT_TCTI }, data: { type: 'string' } });
    const [action, target, ...extra] = positionals;
    if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}'`);
    if (action === 'read') {
      if (target === undefined) throw new UsageError('pcr read needs a selection (e.g. sha256:0,7)');
      return tpmStep('cannot read PCRs', async () => {
        const selection = parsePcrSelection(target);
        const tpm = await Tpm.open(args.tpm);
        try {
          const values = await tpm.pcrRead(selection);
          stdout(selectionOrder(selection).map(({ bank, pcr }) => `${bank}:${pcr}=${values.get(`${bank}:${pcr}`)!.toString('hex')}\n`).join(''));
          return 0;
        } finally {
          await tpm.close();
        }
      });
    }
    if (action === 'extend') {
      if (target === undefined) throw new UsageError('pcr extend needs PCR:BANK=HEX or --data TEXT PCR');
      return tpmStep('cannot extend the PCR', async () => {
        const tpm = await Tpm.open(args.tpm);
        try {
          const { pcr, digests } = args.data !== undefined ? await dataDigests(tpm, target, args.data) : parseExtend(target);
          await tpm.pcrExtend(pcr, digests);
          return 0;
        } finally {
          await tpm.close();
        }
      });
    }
    throw new UsageError(action === undefined ? 'pcr needs an action: read or extend' : `unknown pcr action '${action}' (read, extend)`);
  },
};

function parsePcr(text: string): number {
  const pcr = Number(text);
  if (!/^\d+$/.test(text) || pcr >= PCR_COUNT) throw new OptionError(`bad PCR index '${text}'`);
  return pcr;
}

/** `16:sha256=<hex>,sha1=<hex>` */
export function parseExtend(text: string): { pcr: number; digests: { bank: BankName; digest: Buffer }[] } {
  const colon = text.indexOf(':');
  if (colon < 0) throw new OptionError(`bad extend argument '${text}' (expected PCR:BANK=HEX[,BANK=HEX])`);
  const pcr = parsePcr(text.slice(0, colon));
  const digests = text.slice(colon + 1).split(',').map((item) => {
    const match = /^([a-z0-9_]+)=(?:0x)?([0-9a-fA-F]+)$/.exec(item);
    if (match === null) throw new OptionError(`bad digest '${item}' in '${text}' (expected BANK=HEX)`);
    if (!Object.hasOwn(BANKS, match[1]!)) throw new OptionError(`unknown PCR bank '${match[1]}'`);
    const bank = match[1] as BankName;
    const digest = Buffer.from(match[2]!, 'hex');
    if (match[2]!.length !== BANKS[bank].size * 2) throw new OptionError(`a ${bank} digest has ${BANKS[bank].size} bytes: '${item}'`);
    return { bank, digest };
  });
  return { pcr, digests };
}

async function dataDigests(tpm: Tpm, pcrText: string, data: string): Promise<{ pcr: number; digests: { bank: BankName; digest: Buffer }[] }> {
  const pcr = parsePcr(pcrText);
  const banks = (await tpm.pcrBanks()).map((entry) => entry.bank)
    .filter((bank): bank is BankName => typeof bank === 'string' && getHashes().includes(BANKS[bank].node));
  return { pcr, digests: banks.map((bank) => ({ bank, digest: createHash(BANKS[bank].node).update(data).digest() })) };
}
