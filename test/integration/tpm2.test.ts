// sealroot's TPM client against swtpm on loopback, cross-checked with tpm2-tools (an independent client):
// PCR interop, policy digests, the NV index read by tpm2-tools, the full attack scenario of issue 4, and errors.
import { spawn } from 'node:child_process';
import { createHash, sign } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StepError } from '../../src/errors.ts';
import { Tpm } from '../../src/tpm2/client.ts';
import { capPcr, readTrustedDigestAndCap } from '../../src/tpm2/trusted-digest.ts';
import { TPM_CC } from '../../src/tpm2/constants.ts';
import { parsePcrSelection, withPcr } from '../../src/tpm2/pcr-selection.ts';
import { policyAuthorize } from '../../src/tpm2/policy.ts';
import { loadPolicyKey } from '../../src/tpm2/policy-key.ts';
import { cappedValue, pcrCommandPolicy, POLICY_REF } from '../../src/tpm2/sealed-digest.ts';
import { startSwtpm, type Swtpm } from '../helpers/swtpm.ts';
import { check, requireTools, ROOT, run, type RunResult } from '../helpers/tools.ts';

const NODE = path.join(ROOT, 'node_modules/.bin/node');
const MAIN = path.join(ROOT, 'src/cli/main.ts');
const KEY = path.join(ROOT, 'keys/test-policy-key.pem');
const PUB = path.join(ROOT, 'keys/test-policy-key.pub.pem');
const EC_KEY = path.join(ROOT, 'keys/test-policy-key-ec.pem');
const EC_PUB = path.join(ROOT, 'keys/test-policy-key-ec.pub.pem');
const INDEX = '0x01000e01';
const PCRS = 'sha256:8,9';
const D1 = `sha256:${'d1'.repeat(32)}`;
const D2 = `sha256:${'d2'.repeat(32)}`;
const D3 = `sha256:${'d3'.repeat(32)}`;

requireTools('swtpm', 'tpm2_pcrread', 'tpm2_pcrextend', 'tpm2_nvread', 'tpm2_nvdefine', 'openssl');

const sha256 = (...parts: Buffer[]) => { const h = createHash('sha256'); for (const p of parts) h.update(p); return h.digest(); };
const ZERO = Buffer.alloc(32);
const EVENTS = {
  trusted: { 8: sha256(Buffer.from('trusted kernel')), 9: sha256(Buffer.from('trusted initramfs')) },
  rogue: { 8: sha256(Buffer.from('rogue kernel')), 9: sha256(Buffer.from('trusted initramfs')) },
} as const;
const TRUSTED_VALUES = { 8: sha256(ZERO, EVENTS.trusted[8]), 9: sha256(ZERO, EVENTS.trusted[9]) };

// Without FORCE_COLOR: next to NO_COLOR (as scripts/test.ts sets both) Node prints a warning on stderr.
const { FORCE_COLOR: _forceColor, ...ENV } = process.env;

function sealroot(...args: string[]): RunResult {
  return run(NODE, [MAIN, ...args], { env: ENV });
}

function tools(name: string, args: string[], tcti: string, cwd?: string): RunResult {
  return run(name, ['-T', tcti, ...args], cwd === undefined ? {} : { cwd });
}

/** Boot state set by tpm2-tools (an independent client), not by sealroot. */
function bootInto(tpm: Swtpm, state: 'trusted' | 'rogue'): void {
  for (const pcr of [8, 9] as const) check('tpm2_pcrextend', ['-T', tpm.tcti, `${pcr}:sha256=${EVENTS[state][pcr].toString('hex')}`]);
}

function tpm2PcrRead(tcti: string, selection: string): Map<string, string> {
  const out = check('tpm2_pcrread', ['-T', tcti, selection]);
  const values = new Map<string, string>();
  let bank = '';
  for (const line of out.split('\n')) {
    const header = /^\s*(sha\d+):\s*$/.exec(line);
    if (header !== null) bank = header[1]!;
    const value = /^\s*(\d+)\s*:\s*0x([0-9A-F]+)\s*$/i.exec(line);
    if (value !== null) values.set(`${bank}:${value[1]}`, value[2]!.toLowerCase());
  }
  return values;
}

function tmpdir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-tpm-test-'));
}

function trustedProvision(tpm: Swtpm, state: string, digest = D1): void {
  const result = sealroot('provision', '--tpm', tpm.tcti, '--signing-key', KEY, '--digest', digest, '--pcrs', PCRS, '--state', state);
  assert.is(result.status, 0, result.stderr);
  assert.match(result.stdout, new RegExp(`^provisioned ${digest} in NV index 0x01000e01 \\(name 000b[0-9a-f]{64}\\)`));
}

function unseal(tpm: Swtpm, state: string, ...extra: string[]): RunResult {
  return sealroot('unseal', '--tpm', tpm.tcti, '--pcrs', PCRS, '--state', state, '--policy-key', PUB, ...extra);
}

/**
 * tpm2-tools alone: satisfy the index policy with PolicyPCR(sha256:8,9,15) + PolicyCommandCode + PolicyAuthorize,
 * the approval signed by `signingKey` over `approvedPolicy`, then run `nvCommand` (tpm2_nvread / tpm2_nvwrite).
 */
function toolsPolicyCommand(tcti: string, dir: string, signingKey: string, approvedPolicy: Buffer, commandCode: string, nvCommand: string[]): RunResult {
  const file = (name: string) => path.join(dir, name);
  fs.writeFileSync(file('approved.policy'), approvedPolicy);
  fs.writeFileSync(file('ref.bin'), POLICY_REF);
  fs.writeFileSync(file('message.bin'), Buffer.concat([approvedPolicy, POLICY_REF]));
  fs.writeFileSync(file('signature.bin'), sign('sha256', Buffer.concat([approvedPolicy, POLICY_REF]), fs.readFileSync(signingKey)));
  check('openssl', ['pkey', '-in', signingKey, '-pubout', '-out', file('signer.pub.pem')]);
  const steps: string[][] = [
    ['tpm2_loadexternal', '-C', 'o', '-G', 'rsa', '-u', file('signer.pub.pem'), '-c', file('signer.ctx'), '-n', file('signer.name')],
    ['tpm2_verifysignature', '-c', file('signer.ctx'), '-g', 'sha256', '-m', file('message.bin'), '-f', 'rsassa', '-s', file('signature.bin'), '-t', file('verified.tkt')],
    ['tpm2_flushcontext', '-t'],
    ['tpm2_startauthsession', '--policy-session', '-S', file('session.ctx')],
    ['tpm2_policypcr', '-S', file('session.ctx'), '-l', 'sha256:8,9,15'],
    ['tpm2_policycommandcode', '-S', file('session.ctx'), commandCode],
    ['tpm2_policyauthorize', '-S', file('session.ctx'), '-i', file('approved.policy'), '-q', file('ref.bin'), '-n', file('signer.name'), '-t', file('verified.tkt')],
  ];
  for (const [tool, ...args] of steps) {
    const result = tools(tool!, args, tcti);
    if (result.status !== 0) return result;
  }
  try {
    return tools(nvCommand[0]!, [...nvCommand.slice(1), '-P', `session:${file('session.ctx')}`], tcti);
  } finally {
    run('tpm2_flushcontext', ['-T', tcti, file('session.ctx')]);
  }
}

test('PCR values extended by sealroot read the same in tpm2_pcrread, and the other way round', async () => {
  const tpm = await startSwtpm();
  try {
    const x = sha256(Buffer.from('x'));
    assert.is(sealroot('pcr', 'extend', '--tpm', tpm.tcti, `8:sha256=${x.toString('hex')}`).status, 0);
    assert.is(tpm2PcrRead(tpm.tcti, 'sha256:8').get('sha256:8'), sha256(ZERO, x).toString('hex'));

    const y = sha256(Buffer.from('y'));
    const y1 = createHash('sha1').update('y').digest();
    check('tpm2_pcrextend', ['-T', tpm.tcti, `9:sha256=${y.toString('hex')},sha1=${y1.toString('hex')}`]);
    const ours = sealroot('pcr', 'read', '--tpm', tpm.tcti, 'sha256:9+sha1:9');
    assert.is(ours.status, 0, ours.stderr);
    const theirs = tpm2PcrRead(tpm.tcti, 'sha256:9+sha1:9');
    assert.is(ours.stdout, `sha256:9=${theirs.get('sha256:9')}\nsha1:9=${theirs.get('sha1:9')}\n`);
    assert.is(theirs.get('sha1:9'), createHash('sha1').update(Buffer.alloc(20)).update(y1).digest('hex'));

    // --data: the text's digest in every allocated bank, like tpm2_pcrevent.
    assert.is(sealroot('pcr', 'extend', '--tpm', tpm.tcti, '--data', 'hello', '10').status, 0);
    assert.is(tpm2PcrRead(tpm.tcti, 'sha256:10').get('sha256:10'), sha256(ZERO, sha256(Buffer.from('hello'))).toString('hex'));
    assert.is(tpm2PcrRead(tpm.tcti, 'sha384:10').get('sha384:10'),
      createHash('sha384').update(Buffer.alloc(48)).update(createHash('sha384').update('hello').digest()).digest('hex'));

    // More than 8 PCRs in one selection (a TPM returns at most 8 per PCR_Read).
    const many = sealroot('pcr', 'read', '--tpm', tpm.tcti, 'sha256:0,1,2,3,4,5,6,7,8,9,10,11');
    assert.is(many.stdout.split('\n').filter(Boolean).length, 12);
    assert.match(many.stdout, new RegExp(`sha256:8=${sha256(ZERO, x).toString('hex')}`));
  } finally {
    await tpm.stop();
  }
});

test('software policy digests equal the TPM (PolicyGetDigest) and tpm2-tools trial sessions', async () => {
  const tpm = await startSwtpm();
  const dir = tmpdir();
  try {
    bootInto(tpm, 'trusted');
    const selection = withPcr(parsePcrSelection(PCRS), 15);
    const client = await Tpm.open(tpm.tcti);
    let fromTpm: Buffer;
    let values;
    try {
      values = await client.pcrRead(selection);
      const session = await client.startPolicySession(true);
      await client.policyPcr(session.handle, selection);
      await client.policyCommandCode(session.handle, TPM_CC.NV_Read);
      fromTpm = await client.policyGetDigest(session.handle);
      await client.flush(session.handle);
    } finally {
      await client.close();
    }
    const software = pcrCommandPolicy(selection, values, TPM_CC.NV_Read);
    assert.is(software.toString('hex'), fromTpm.toString('hex'));

    const file = (name: string) => path.join(dir, name);
    const steps: string[][] = [
      ['tpm2_startauthsession', '-S', file('trial.ctx')],
      ['tpm2_policypcr', '-S', file('trial.ctx'), '-l', 'sha256:8,9,15', '-L', file('pcr.policy')],
      ['tpm2_policycommandcode', '-S', file('trial.ctx'), '-L', file('cc.policy'), 'TPM2_CC_NV_Read'],
      ['tpm2_flushcontext', file('trial.ctx')],
      ['tpm2_loadexternal', '-C', 'o', '-G', 'rsa', '-u', PUB, '-c', file('key.ctx'), '-n', file('key.name')],
      ['tpm2_flushcontext', '-t'],
      ['tpm2_startauthsession', '-S', file('trial2.ctx')],
      ['tpm2_policyauthorize', '-S', file('trial2.ctx'), '-L', file('authorize.policy'), '-i', file('cc.policy'), '-q', file('ref.bin'), '-n', file('key.name')],
      ['tpm2_flushcontext', file('trial2.ctx')],
    ];
    fs.writeFileSync(file('ref.bin'), POLICY_REF);
    for (const [tool, ...args] of steps) check(tool!, ['-T', tpm.tcti, ...args]);
    assert.is(fs.readFileSync(file('cc.policy')).toString('hex'), software.toString('hex'));
    const policyKey = loadPolicyKey(PUB);
    assert.is(fs.readFileSync(file('key.name')).toString('hex'), policyKey.name.toString('hex'));
    assert.is(fs.readFileSync(file('authorize.policy')).toString('hex'), policyAuthorize(policyKey.name, POLICY_REF).toString('hex'));
  } finally {
    await tpm.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the NV index sealroot provisions is read by tpm2-tools with the same policy (commands shown)', async () => {
  const tpm = await startSwtpm();
  const dir = tmpdir();
  try {
    bootInto(tpm, 'trusted');
    trustedProvision(tpm, path.join(dir, 'state'));
    const selection = withPcr(parsePcrSelection(PCRS), 15);
    const values = new Map([['sha256:8', TRUSTED_VALUES[8]], ['sha256:9', TRUSTED_VALUES[9]], ['sha256:15', ZERO]]);
    const approved = pcrCommandPolicy(selection, values, TPM_CC.NV_Read);
    const read = toolsPolicyCommand(tpm.tcti, dir, KEY, approved, 'TPM2_CC_NV_Read', ['tpm2_nvread', INDEX, '-C', INDEX, '-s', '32', '-o', path.join(dir, 'digest.bin')]);
    assert.is(read.status, 0, read.stderr);
    assert.is(`sha256:${fs.readFileSync(path.join(dir, 'digest.bin')).toString('hex')}`, D1);
    const pub = check('tpm2_nvreadpublic', ['-T', tpm.tcti, INDEX]);
    assert.match(pub, /policywrite\|writeall\|policyread\|written/);
  } finally {
    await tpm.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('scenario: trusted provision D1; rogue boot and every attack; trusted boot reads D1 or fails, never D2; cap', async () => {
  const tpm = await startSwtpm();
  const dir = tmpdir();
  const state = path.join(dir, 'state');
  const attackerKey = path.join(dir, 'attacker.pem');
  check('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', attackerKey]);
  const d2File = path.join(dir, 'd2.bin');
  fs.writeFileSync(d2File, Buffer.from('d2'.repeat(32), 'hex'));
  const neverD2 = (result: RunResult, what: string) => assert.not.match(result.stdout + result.stderr, /d2d2d2d2/, `${what} printed D2`);
  const rogueWriteApproval = () => {
    // What an attacker can sign: a write approval for the rogue PCR state, with its own key.
    const rogueValues = new Map([['sha256:8', sha256(ZERO, EVENTS.rogue[8])], ['sha256:9', sha256(ZERO, EVENTS.rogue[9])], ['sha256:15', ZERO]]);
    return pcrCommandPolicy(withPcr(parsePcrSelection(PCRS), 15), rogueValues, TPM_CC.NV_Write);
  };
  try {
    // 1. Trusted boot: provision D1, unseal prints D1.
    bootInto(tpm, 'trusted');
    trustedProvision(tpm, state);
    const first = unseal(tpm, state);
    assert.is(first.status, 0, first.stderr);
    assert.is(first.stdout, `${D1}\n`);

    // 2. Rogue boot: unseal fails.
    await tpm.restart();
    bootInto(tpm, 'rogue');
    const rogue = unseal(tpm, state);
    assert.is(rogue.status, 1);
    assert.match(rogue.stderr, /^sealroot: tpm: cannot read the trusted digest: no read approval matches the current PCR values/m);
    assert.match(rogue.stderr, new RegExp(`^sealroot: tpm: current PCR values: sha256:8=${sha256(ZERO, EVENTS.rogue[8]).toString('hex')} sha256:9=[0-9a-f]{64} sha256:15=0{64}$`, 'm'));

    // 3. Attacks from the rogue boot (non-destructive to the index first).
    const attackProvision = sealroot('provision', '--tpm', tpm.tcti, '--digest', D2, '--pcrs', PCRS, '--state', state, '--policy-key', PUB,
      '--pcr-value', `8=${TRUSTED_VALUES[8].toString('hex')}`, '--pcr-value', `9=${TRUSTED_VALUES[9].toString('hex')}`);
    assert.is(attackProvision.status, 1, attackProvision.stdout);
    assert.match(attackProvision.stderr, /no write approval matches the current PCR values/);
    // With its own signing key: its approvals land in the state dir, but the index is not its index.
    const ownKey = sealroot('provision', '--tpm', tpm.tcti, '--digest', D2, '--pcrs', PCRS, '--state', state, '--signing-key', attackerKey,
      '--pcr-value', `8=${TRUSTED_VALUES[8].toString('hex')}`, '--pcr-value', `9=${TRUSTED_VALUES[9].toString('hex')}`);
    assert.is(ownKey.status, 1);
    assert.match(ownKey.stderr, /exists and is not sealroot's/);
    // Cap in the rogue boot (PCR 15 reaches its "capped" value), then replay the trusted write approval.
    const rogueCap = unseal(tpm, state, '--cap');
    assert.is(rogueCap.status, 1);
    assert.match(rogueCap.stderr, /no read approval matches/);
    // --cap caps on the failure path too (readTrustedDigestAndCap).
    assert.is(tpm2PcrRead(tpm.tcti, 'sha256:15').get('sha256:15'), cappedValue('sha256', ZERO).toString('hex'));
    const replay = sealroot('provision', '--tpm', tpm.tcti, '--digest', D2, '--pcrs', PCRS, '--state', state, '--policy-key', PUB,
      '--pcr-value', `8=${TRUSTED_VALUES[8].toString('hex')}`, '--pcr-value', `9=${TRUSTED_VALUES[9].toString('hex')}`, '--pcr-value', `15=${'00'.repeat(32)}`);
    assert.is(replay.status, 1);
    assert.match(replay.stderr, /no write approval matches/);
    // Owner authorization (empty, the common default) and the index's own authValue: neither may write.
    const ownerWrite = tools('tpm2_nvwrite', [INDEX, '-C', 'o', '-i', d2File], tpm.tcti);
    assert.is.not(ownerWrite.status, 0);
    assert.match(ownerWrite.stderr, /0x1[0-9a-f]{2}|attributes|authorization/i);
    const authWrite = tools('tpm2_nvwrite', [INDEX, '-C', INDEX, '-i', d2File], tpm.tcti);
    assert.is.not(authWrite.status, 0);
    // PolicyAuthorize with the attacker's own key: the TPM refuses (the index's policy names the trusted key).
    const foreignApproval = toolsPolicyCommand(tpm.tcti, dir, attackerKey, rogueWriteApproval(), 'TPM2_CC_NV_Write', ['tpm2_nvwrite', INDEX, '-C', INDEX, '-i', d2File]);
    assert.is.not(foreignApproval.status, 0);
    assert.match(foreignApproval.stderr, /0x99d|policy/i);

    // 4. Trusted boot again: D1.
    await tpm.restart();
    bootInto(tpm, 'trusted');
    const again = unseal(tpm, state);
    neverD2(again, 'unseal after the attacks');
    assert.is(again.stdout, `${D1}\n`, again.stderr);

    // 5. unseal --cap, then a second read in the same boot fails; PCR 15 holds the capped value (checked by tpm2-tools).
    const capped = unseal(tpm, state, '--cap');
    assert.is(capped.stdout, `${D1}\n`, capped.stderr);
    const second = unseal(tpm, state);
    assert.is(second.status, 1);
    assert.match(second.stderr, /no read approval matches the current PCR values/);
    assert.is(tpm2PcrRead(tpm.tcti, 'sha256:15').get('sha256:15'), cappedValue('sha256', ZERO).toString('hex'));

    // 6. The running system of a trusted boot (capped) updates the digest without the private key.
    const update = sealroot('provision', '--tpm', tpm.tcti, '--digest', D3, '--pcrs', PCRS, '--state', state, '--policy-key', PUB);
    assert.is(update.status, 0, update.stderr);
    await tpm.restart();
    bootInto(tpm, 'trusted');
    assert.is(unseal(tpm, state).stdout, `${D3}\n`);

    // 6b. A failed trusted boot caps, then voids the approvals (what `sealroot boot` does on every failure): a shell
    // left by the failure can no longer use the write approval, and the next trusted boot still reads D3.
    assert.is(unseal(tpm, state, '--cap').stdout, `${D3}\n`);
    await capPcr({ tcti: tpm.tcti, event: 'boot-failed' });
    const afterFailure = sealroot('provision', '--tpm', tpm.tcti, '--digest', D2, '--pcrs', PCRS, '--state', state, '--policy-key', PUB);
    assert.is(afterFailure.status, 1, afterFailure.stdout);
    assert.match(afterFailure.stderr, /no write approval matches the current PCR values/);
    await tpm.restart();
    bootInto(tpm, 'trusted');
    assert.is(unseal(tpm, state).stdout, `${D3}\n`);

    // 7. Destructive attacks from a rogue boot: undefine and redefine the index (owner auth is empty).
    await tpm.restart();
    bootInto(tpm, 'rogue');
    check('tpm2_nvundefine', ['-T', tpm.tcti, '-C', 'o', INDEX]);
    check('tpm2_nvdefine', ['-T', tpm.tcti, '-C', 'o', '-s', '32', '-a', 'authread|authwrite', INDEX]);
    check('tpm2_nvwrite', ['-T', tpm.tcti, '-C', INDEX, '-i', d2File, INDEX]);
    await tpm.restart();
    bootInto(tpm, 'trusted');
    const redefined = unseal(tpm, state);
    neverD2(redefined, 'unseal of a redefined index');
    assert.is(redefined.status, 1);
    assert.match(redefined.stderr, /NV index 0x1000e01 is not trusted: name [0-9a-f]+ is not the name of sealroot's index/);

    // The same public area as sealroot's (policy and attributes copied): defined, but nobody can write it.
    await tpm.restart();
    bootInto(tpm, 'rogue');
    check('tpm2_nvundefine', ['-T', tpm.tcti, '-C', 'o', INDEX]);
    const authPolicy = path.join(dir, 'authpolicy.bin');
    fs.writeFileSync(authPolicy, policyAuthorize(loadPolicyKey(PUB).name, POLICY_REF));
    check('tpm2_nvdefine', ['-T', tpm.tcti, '-C', 'o', '-s', '32', '-a', 'policywrite|policyread|writeall', '-L', authPolicy, INDEX]);
    const copiedPolicyWrite = toolsPolicyCommand(tpm.tcti, dir, attackerKey, rogueWriteApproval(), 'TPM2_CC_NV_Write', ['tpm2_nvwrite', INDEX, '-C', INDEX, '-i', d2File]);
    assert.is.not(copiedPolicyWrite.status, 0);
    const noKey = sealroot('provision', '--tpm', tpm.tcti, '--digest', D2, '--pcrs', PCRS, '--state', state, '--policy-key', PUB,
      '--pcr-value', `8=${TRUSTED_VALUES[8].toString('hex')}`, '--pcr-value', `9=${TRUSTED_VALUES[9].toString('hex')}`);
    assert.is(noKey.status, 1);
    await tpm.restart();
    bootInto(tpm, 'trusted');
    const unwritten = unseal(tpm, state);
    neverD2(unwritten, 'unseal of a copied, unwritten index');
    assert.is(unwritten.status, 1);
    assert.match(unwritten.stderr, /was defined but never written/);
  } finally {
    await tpm.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('errors: no TPM, unknown or unallocated bank, wrong PCRs, wrong key, corrupted state, DA lockout', async () => {
  const tpm = await startSwtpm();
  const dir = tmpdir();
  const state = path.join(dir, 'state');
  try {
    // No TPM: nothing listens, or no device node.
    const closed = await startSwtpm();
    const closedTcti = closed.tcti;
    await closed.stop();
    const refused = sealroot('unseal', '--tpm', closedTcti, '--pcrs', PCRS, '--state', state, '--policy-key', PUB);
    assert.is(refused.status, 1);
    assert.is(refused.stderr, `sealroot: tpm: cannot read the trusted digest: no TPM at ${closedTcti}: connection refused (is swtpm running?)\n`);
    // readTrustedDigestAndCap: both steps fail; the read's error is thrown, the cap's is logged.
    const logged: string[] = [];
    const log = { info: () => {}, notice: () => {}, warn: () => {}, error: (message: string) => logged.push(message) };
    try {
      await readTrustedDigestAndCap({ tcti: closedTcti, pcrs: PCRS, stateDir: state, policyKeyPath: PUB, log });
      assert.unreachable('read without a TPM');
    } catch (error) {
      assert.instance(error, StepError);
      assert.match((error as Error).message, /^tpm: cannot read the trusted digest: no TPM at/);
    }
    assert.equal(logged.map((line) => line.replace(/port=\d+/, 'port=P')), ['tpm: cannot cap PCR 15: no TPM at swtpm:host=127.0.0.1,port=P: connection refused (is swtpm running?)']);
    const noDevice = sealroot('unseal', '--tpm', 'device:/dev/sealroot-no-such-tpm', '--pcrs', PCRS, '--state', state, '--policy-key', PUB);
    assert.is(noDevice.status, 1);
    assert.match(noDevice.stderr, /^sealroot: tpm: cannot read the trusted digest: no TPM: \/dev\/sealroot-no-such-tpm does not exist/);
    assert.is(sealroot('pcr', 'read', '--tpm', 'bogus:x', 'sha256:0').status, 2);

    bootInto(tpm, 'trusted');
    trustedProvision(tpm, state);
    assert.is(unseal(tpm, state).stdout, `${D1}\n`);

    // Unknown bank (syntax) and a bank the TPM has not allocated.
    const unknown = sealroot('unseal', '--tpm', tpm.tcti, '--pcrs', 'sha999:8', '--state', state, '--policy-key', PUB);
    assert.is(unknown.status, 2);
    assert.match(unknown.stderr, /unknown PCR bank 'sha999'/);

    // Wrong PCRs: one more extend of PCR 9 in this boot.
    check('tpm2_pcrextend', ['-T', tpm.tcti, `9:sha256=${'ab'.repeat(32)}`]);
    const wrong = unseal(tpm, state);
    assert.is(wrong.status, 1);
    assert.match(wrong.stderr, /no read approval matches the current PCR values \(policy [0-9a-f]{64}; 1 read approvals in the state directory\)/);
    await tpm.restart();
    bootInto(tpm, 'trusted');

    // A policy key that is not the one the index was provisioned for: the index's name does not match.
    const otherKey = path.join(dir, 'other.pem');
    check('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', otherKey]);
    const otherPub = sealroot('unseal', '--tpm', tpm.tcti, '--pcrs', PCRS, '--state', state, '--policy-key', otherKey);
    assert.is(otherPub.status, 1);
    assert.match(otherPub.stderr, /is not trusted: name [0-9a-f]+ is not the name of sealroot's index for this policy key/);
    const notPem = sealroot('unseal', '--tpm', tpm.tcti, '--pcrs', PCRS, '--state', state, '--policy-key', path.join(dir, 'missing.pem'));
    assert.match(notPem.stderr, /cannot read the policy key .*missing\.pem: ENOENT/);

    // Corrupted state files: garbage, a flipped signature, a foreign signature put first, a missing file.
    const file = path.join(state, 'approvals.json');
    const good = fs.readFileSync(file, 'utf8');
    fs.writeFileSync(file, good.slice(0, 100));
    const garbage = unseal(tpm, state);
    assert.is(garbage.status, 1);
    assert.match(garbage.stderr, new RegExp(`^sealroot: tpm: cannot read the trusted digest \\(${file}\\): corrupted state file: not JSON`));
    const parsed = JSON.parse(good) as { approvals: { purpose: string; signature: string; policy: string }[] };
    const flipped = structuredClone(parsed);
    const read = flipped.approvals.find((a) => a.purpose === 'read')!;
    read.signature = (read.signature[0] === '0' ? '1' : '0') + read.signature.slice(1);
    fs.writeFileSync(file, JSON.stringify(flipped));
    const badSignature = unseal(tpm, state);
    assert.is(badSignature.status, 1);
    assert.match(badSignature.stderr, /the read approval for policy [0-9a-f]{64} is not signed by the policy key/);
    const foreign = structuredClone(parsed);
    const forged = { ...foreign.approvals.find((a) => a.purpose === 'read')!, signature: sign('sha256', Buffer.concat([Buffer.from(read.policy, 'hex'), POLICY_REF]), fs.readFileSync(otherKey)).toString('hex') };
    foreign.approvals.unshift(forged);
    fs.writeFileSync(file, JSON.stringify(foreign));
    assert.is(unseal(tpm, state).stdout, `${D1}\n`, 'a foreign-signed record before the valid one must not stop the read');
    fs.writeFileSync(file, JSON.stringify({ ...parsed, approvals: [{ ...parsed.approvals[0], policy: 'zz' }] }));
    assert.match(unseal(tpm, state).stderr, /corrupted state file: approval 0: bad policy/);
    fs.rmSync(file);
    assert.match(unseal(tpm, state).stderr, /no approvals: the state directory was not provisioned/);
    fs.writeFileSync(file, good);
    assert.is(unseal(tpm, state).stdout, `${D1}\n`);

    // DA lockout, caused by a rogue boot hammering a DA-protected index: the TPM refuses DA-protected authorizations
    // (tpm2-tools sees TPM_RC_LOCKOUT), but sealroot's policy-only authorization still reads the digest.
    check('tpm2_dictionarylockout', ['-T', tpm.tcti, '-s', '-n', '1', '-t', '1000', '-l', '1000']);
    check('tpm2_nvdefine', ['-T', tpm.tcti, '-C', 'o', '-s', '8', '-a', 'authread|authwrite', '-p', 'good', '0x01000e02']);
    run('tpm2_nvread', ['-T', tpm.tcti, '-P', 'bad', '-C', '0x01000e02', '-s', '8', '0x01000e02']);
    const locked = run('tpm2_nvread', ['-T', tpm.tcti, '-P', 'good', '-C', '0x01000e02', '-s', '8', '0x01000e02']);
    assert.match(locked.stderr, /0x921/);
    assert.match(check('tpm2_getcap', ['-T', tpm.tcti, 'properties-variable']), /inLockout:\s+1/);
    const inLockout = unseal(tpm, state);
    assert.is(inLockout.stdout, `${D1}\n`, inLockout.stderr);

    // An owner hierarchy with a password: defining the index needs --owner-auth; a wrong one is named by the TPM.
    check('tpm2_changeauth', ['-T', tpm.tcti, '-c', 'o', 'owner-secret']);
    const ownerArgs = ['provision', '--tpm', tpm.tcti, '--signing-key', KEY, '--digest', D1, '--pcrs', PCRS, '--state', path.join(dir, 'state9'), '--nv-index', '0x01000e09'];
    const noOwnerAuth = sealroot(...ownerArgs);
    assert.is(noOwnerAuth.status, 1);
    assert.match(noOwnerAuth.stderr, /TPM2_NV_DefineSpace: TPM_RC_BAD_AUTH \(session 1\) \[0x9a2\]/);
    const withOwnerAuth = sealroot(...ownerArgs, '--owner-auth', 'owner-secret');
    assert.is(withOwnerAuth.status, 0, withOwnerAuth.stderr);

    // A bank that is not allocated (after tpm2_pcrallocate and a reboot).
    check('tpm2_pcrallocate', ['-T', tpm.tcti, 'sha1:all+sha256:all+sha384:none+sha512:none']);
    await tpm.restart();
    const unallocated = sealroot('unseal', '--tpm', tpm.tcti, '--pcrs', 'sha384:8', '--state', state, '--policy-key', PUB);
    assert.is(unallocated.status, 1);
    assert.match(unallocated.stderr, /^sealroot: tpm: cannot read the trusted digest: PCR bank sha384 is not allocated on this TPM \(allocated: sha1, sha256\)$/m);
    const pcrRead = sealroot('pcr', 'read', '--tpm', tpm.tcti, 'sha384:8');
    assert.is(pcrRead.status, 1);
    assert.match(pcrRead.stderr, /no value for sha384:8 \(bank not allocated\?\)/);
  } finally {
    await tpm.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('transports: mssim framing against swtpm; a TPM that accepts but never answers times out', async () => {
  const tpm = await startSwtpm();
  const unstarted = await startSwtpm(undefined, { flags: 'not-need-init' });
  const server = net.createServer(() => { /* accept, never answer */ });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const mssim = await Tpm.open(`mssim:host=127.0.0.1,port=${tpm.port}`);
    try {
      assert.is((await mssim.getRandom(16)).length, 16);
      const values = await mssim.pcrRead(parsePcrSelection('sha256:0'));
      assert.equal(values.get('sha256:0'), Buffer.alloc(32));
    } finally {
      await mssim.close();
    }
    // A simulator powered on but not started: TPM_RC_INITIALIZE, then sealroot sends TPM2_Startup(CLEAR) once.
    const fresh = sealroot('pcr', 'read', '--tpm', unstarted.tcti, 'sha256:0');
    assert.is(fresh.stdout, `sha256:0=${'00'.repeat(32)}\n`, fresh.stderr);
    const port = (server.address() as net.AddressInfo).port;
    const silent = await Tpm.open(`swtpm:host=127.0.0.1,port=${port}`, { timeoutMs: 300 });
    const started = Date.now();
    try {
      await silent.getRandom(8);
      assert.unreachable('a silent TPM answered');
    } catch (error) {
      assert.match((error as Error).message, new RegExp(`no answer from the TPM at swtpm:host=127.0.0.1,port=${port} within 300 ms`));
    }
    assert.ok(Date.now() - started < 5000);
  } finally {
    server.close();
    await unstarted.stop();
    await tpm.stop();
  }
});

test('an ECDSA P-256 policy key, a SHA-512 digest, another NV index and another cap PCR', async () => {
  const tpm = await startSwtpm();
  const dir = tmpdir();
  const state = path.join(dir, 'state');
  const digest = `sha512:${'5a'.repeat(64)}`;
  const options = ['--nv-index', '0x01000e07', '--cap-pcr', '14', '--state', state];
  try {
    bootInto(tpm, 'trusted');
    // tpm2-tools names the EC key as sealroot does.
    check('tpm2_loadexternal', ['-T', tpm.tcti, '-C', 'o', '-G', 'ecc', '-u', EC_PUB, '-c', path.join(dir, 'ec.ctx'), '-n', path.join(dir, 'ec.name')]);
    check('tpm2_flushcontext', ['-T', tpm.tcti, '-t']);
    assert.is(fs.readFileSync(path.join(dir, 'ec.name')).toString('hex'), loadPolicyKey(EC_PUB).name.toString('hex'));
    const provisioned = sealroot('provision', '--tpm', tpm.tcti, '--signing-key', EC_KEY, '--digest', digest, '--pcrs', PCRS, ...options);
    assert.is(provisioned.status, 0, provisioned.stderr);
    assert.match(provisioned.stdout, /in NV index 0x01000e07/);
    assert.match(check('tpm2_nvreadpublic', ['-T', tpm.tcti, '0x01000e07']), /size: 64/);
    // The RSA key is not the key of this index.
    assert.match(sealroot('unseal', '--tpm', tpm.tcti, '--pcrs', PCRS, '--policy-key', PUB, ...options).stderr, /is not trusted/);
    const read = sealroot('unseal', '--tpm', tpm.tcti, '--pcrs', PCRS, '--policy-key', EC_PUB, '--cap', ...options);
    assert.is(read.stdout, `${digest}\n`, read.stderr);
    assert.is(tpm2PcrRead(tpm.tcti, 'sha256:14').get('sha256:14'), cappedValue('sha256', ZERO).toString('hex'));
    assert.is(tpm2PcrRead(tpm.tcti, 'sha256:15').get('sha256:15'), '00'.repeat(32));
    assert.is(sealroot('unseal', '--tpm', tpm.tcti, '--pcrs', PCRS, '--policy-key', EC_PUB, ...options).status, 1);
    // Next boot: the running system (capped) writes a new SHA-512 digest under the EC-signed write approval.
    await tpm.restart();
    bootInto(tpm, 'trusted');
    assert.is(sealroot('unseal', '--tpm', tpm.tcti, '--pcrs', PCRS, '--policy-key', EC_PUB, '--cap', ...options).status, 0);
    const next = `sha512:${'6b'.repeat(64)}`;
    const update = sealroot('provision', '--tpm', tpm.tcti, '--digest', next, '--pcrs', PCRS, '--policy-key', EC_PUB, ...options);
    assert.is(update.status, 0, update.stderr);
    assert.match(update.stderr, /under a write approval/);
    await tpm.restart();
    bootInto(tpm, 'trusted');
    assert.is(sealroot('unseal', '--tpm', tpm.tcti, '--pcrs', PCRS, '--policy-key', EC_PUB, ...options).stdout, `${next}\n`);
    // A SHA-256 digest does not fit the 64-byte index.
    const wrongSize = sealroot('provision', '--tpm', tpm.tcti, '--signing-key', EC_KEY, '--digest', D1, '--pcrs', PCRS, ...options);
    assert.is(wrongSize.status, 1);
    assert.match(wrongSize.stderr, /holds 64-byte digests, not 32/);
  } finally {
    await tpm.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// A character device that behaves like /dev/tpm0 (one command written, the response read back) without a TPM on the
// host: a raw pseudo-terminal whose other end relays each command to swtpm and answers in two pieces.
const PTY_BRIDGE = `
import os, pty, socket, struct, sys, tty
master, slave = pty.openpty()
tty.setraw(slave)
print(os.ttyname(slave), flush=True)
def readn(fd, n):
    data = b''
    while len(data) < n:
        chunk = os.read(fd, n - len(data))
        if not chunk: sys.exit(0)
        data += chunk
    return data
while True:
    head = readn(master, 6)
    command = head + readn(master, struct.unpack('>I', head[2:6])[0] - 6)
    s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
    s.sendall(command)
    response = b''
    while len(response) < 6 or len(response) < struct.unpack('>I', response[2:6])[0]:
        response += s.recv(65536)
    s.close()
    os.write(master, response[:7])
    os.write(master, response[7:])
`;

test('device transport: a raw character device bridged to swtpm, responses split across reads', async () => {
  requireTools('python3');
  const tpm = await startSwtpm();
  const bridge = spawn('python3', ['-u', '-c', PTY_BRIDGE, String(tpm.port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const device = await new Promise<string>((resolve, reject) => {
      bridge.stdout.once('data', (data: Buffer) => resolve(data.toString().trim()));
      bridge.once('exit', (code) => reject(new Error(`the pty bridge exited with ${code}`)));
      setTimeout(() => reject(new Error('the pty bridge printed no device within 5 s')), 5000);
    });
    assert.match(device, /^\/dev\/pts\/\d+$/);
    bootInto(tpm, 'trusted');
    const ours = sealroot('pcr', 'read', '--tpm', `device:${device}`, 'sha256:8,9+sha1:0');
    assert.is(ours.status, 0, ours.stderr);
    const theirs = tpm2PcrRead(tpm.tcti, 'sha256:8,9+sha1:0');
    assert.is(ours.stdout, `sha256:8=${theirs.get('sha256:8')}\nsha256:9=${theirs.get('sha256:9')}\nsha1:0=${theirs.get('sha1:0')}\n`);
    assert.is(theirs.get('sha256:8'), TRUSTED_VALUES[8].toString('hex'));
  } finally {
    bridge.kill('SIGKILL');
    await tpm.stop();
  }
});

test('provisioning from the host with predicted PCR values: the next boot reads the digest', async () => {
  const tpm = await startSwtpm();
  const dir = tmpdir();
  const state = path.join(dir, 'state');
  try {
    // The host's view of the TPM: PCRs at their reset values, nothing like the guest's next boot.
    const provisioned = sealroot('provision', '--tpm', tpm.tcti, '--signing-key', KEY, '--digest', D1, '--pcrs', PCRS, '--state', state,
      '--pcr-value', `8=${TRUSTED_VALUES[8].toString('hex')}`, '--pcr-value', `sha256:9=${TRUSTED_VALUES[9].toString('hex')}`);
    assert.is(provisioned.status, 0, provisioned.stderr);
    assert.match(provisioned.stderr, /with a one-time PolicySigned authorization/);
    assert.is(unseal(tpm, state).status, 1, 'the host state must not read the digest');
    await tpm.restart();
    bootInto(tpm, 'trusted');
    assert.is(unseal(tpm, state).stdout, `${D1}\n`);
    // approve without a TPM: every value given; the same policies as provision signed.
    const approved = sealroot('approve', '--signing-key', KEY, '--pcrs', PCRS, '--state', path.join(dir, 'approved'),
      '--pcr-value', `8=${TRUSTED_VALUES[8].toString('hex')}`, '--pcr-value', `9=${TRUSTED_VALUES[9].toString('hex')}`);
    assert.is(approved.status, 0, approved.stderr);
    const policies = (file: string) => (JSON.parse(fs.readFileSync(file, 'utf8')) as { approvals: { policy: string }[] }).approvals.map((a) => a.policy).sort();
    assert.equal(policies(path.join(dir, 'approved/approvals.json')), policies(path.join(state, 'approvals.json')));
  } finally {
    await tpm.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
