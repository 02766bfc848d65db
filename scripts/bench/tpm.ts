// TPM section: the authenticated read of the trusted digest (name check, PolicyPCR + PolicyCommandCode +
// PolicyAuthorize with a signed approval, NV_Read) and the PCR cap, against swtpm on loopback; the reference is
// tpm2-tools doing the same command sequence, measured in the same run. Ratios > 1: sealroot is faster.
import { execFileSync } from 'node:child_process';
import { sign } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TPM_CC } from '../../src/tpm2/constants.ts';
import { parsePcrSelection, withPcr } from '../../src/tpm2/pcr-selection.ts';
import { CAP_EVENT, pcrCommandPolicy } from '../../src/tpm2/approved-policy.ts';
import { TRUST_POLICY_REF as POLICY_REF } from '../../src/trust/policies.ts';
import { Tpm } from '../../src/tpm2/client.ts';
import { capPcr, readTrust } from '../../src/trust/boot-read.ts';
import { startSwtpm } from '../../test/helpers/swtpm.ts';
import { figures } from './lib/figures.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const KEY = path.join(ROOT, 'keys/test-policy-key.pem');
const PUB = path.join(ROOT, 'keys/test-policy-key.pub.pem');
const PCRS = 'sha256:0,2,4,7';
const ROUNDS = 10;

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function time(action: () => Promise<unknown> | unknown): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const started = performance.now();
    await action();
    samples.push(performance.now() - started);
  }
  return median(samples);
}

const tpm = await startSwtpm();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-bench-tpm-'));
try {
  const state = path.join(dir, 'state');
  execFileSync(process.execPath, [path.join(ROOT, 'src/cli/main.ts'), 'provision', '--tpm', tpm.tcti, '--signing-key', KEY,
    '--digest', `sha256:${'ab'.repeat(32)}`, '--size', '4096', '--pcrs', PCRS, '--state', state], { stdio: 'ignore' });

  const ours = await time(() => readTrust({ tcti: tpm.tcti, pcrs: PCRS, stateDir: state, policyKeyPath: PUB }));

  const client = await Tpm.open(tpm.tcti);
  const selection = withPcr(parsePcrSelection(PCRS), 15);
  const approved = pcrCommandPolicy(selection, await client.pcrRead(selection), TPM_CC.NV_Read);
  await client.close();
  const file = (name: string) => path.join(dir, name);
  fs.writeFileSync(file('approved.policy'), approved);
  fs.writeFileSync(file('ref.bin'), POLICY_REF);
  fs.writeFileSync(file('message.bin'), Buffer.concat([approved, POLICY_REF]));
  fs.writeFileSync(file('signature.bin'), sign('sha256', Buffer.concat([approved, POLICY_REF]), fs.readFileSync(KEY)));
  const tools = (tool: string, ...args: string[]) => execFileSync(tool, ['-T', tpm.tcti, ...args], { stdio: 'ignore' });
  const reference = await time(() => {
    tools('tpm2_nvreadpublic', '0x01000e01');
    tools('tpm2_loadexternal', '-C', 'o', '-G', 'rsa', '-u', PUB, '-c', file('key.ctx'), '-n', file('key.name'));
    tools('tpm2_verifysignature', '-c', file('key.ctx'), '-g', 'sha256', '-m', file('message.bin'), '-f', 'rsassa', '-s', file('signature.bin'), '-t', file('ticket'));
    tools('tpm2_flushcontext', '-t');
    tools('tpm2_startauthsession', '--policy-session', '-S', file('session.ctx'));
    tools('tpm2_policypcr', '-S', file('session.ctx'), '-l', 'sha256:0,2,4,7,15');
    tools('tpm2_policycommandcode', '-S', file('session.ctx'), 'TPM2_CC_NV_Read');
    tools('tpm2_policyauthorize', '-S', file('session.ctx'), '-i', file('approved.policy'), '-q', file('ref.bin'), '-n', file('key.name'), '-t', file('ticket'));
    tools('tpm2_nvread', '0x01000e01', '-C', '0x01000e01', '-s', '100', '-P', `session:${file('session.ctx')}`, '-o', file('digest.bin'));
    tools('tpm2_flushcontext', file('session.ctx'));
  });
  figures.comparison('authenticated read in-process', ours, reference, 'tpm2-tools, 10 processes', { statistic: `median of ${ROUNDS}` });
  console.log(`authenticated read (median of ${ROUNDS}): sealroot in-process ${ours.toFixed(1)} ms, tpm2-tools (10 processes) ${reference.toFixed(1)} ms, ratio sealroot/tpm2-tools ${(ours / reference).toFixed(3)}x`);
  const binary = path.join(ROOT, 'dist/sealroot');
  if (fs.existsSync(binary)) {
    const cli = await time(() => execFileSync(binary, ['unseal', '--tpm', tpm.tcti, '--pcrs', PCRS, '--state', state, '--policy-key', PUB], { stdio: 'ignore' }));
    figures.comparison('authenticated read, dist/sealroot unseal', cli, reference, 'tpm2-tools, 10 processes', { statistic: `median of ${ROUNDS}` });
    console.log(`authenticated read as one process (median of ${ROUNDS}): dist/sealroot unseal ${cli.toFixed(1)} ms, tpm2-tools ${reference.toFixed(1)} ms, ratio sealroot/tpm2-tools ${(cli / reference).toFixed(2)}x`);
  } else {
    console.log('dist/sealroot unseal: not measured (npm run build first)');
  }

  // The cap is one TPM2_PCR_Event (the TPM hashes the event into every allocated bank): tpm2_pcrevent sends the same.
  const cap = await time(() => capPcr({ tcti: tpm.tcti, pcr: 14 }));
  fs.writeFileSync(file('cap-event.bin'), CAP_EVENT);
  const event = await time(() => tools('tpm2_pcrevent', '14', file('cap-event.bin')));
  figures.comparison('PCR cap, 4 banks', cap, event, 'tpm2_pcrevent', { statistic: `median of ${ROUNDS}` });
  console.log(`PCR cap, 4 banks (median of ${ROUNDS}): sealroot ${cap.toFixed(1)} ms, tpm2_pcrevent ${event.toFixed(1)} ms, ratio sealroot/tpm2-tools ${(cap / event).toFixed(2)}x`);
} finally {
  await tpm.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
