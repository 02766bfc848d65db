// sealroot's TPM client and the signed, rollback-proof trusted set (issue 11) against swtpm on loopback,
// cross-checked with tpm2-tools (an independent client): PCR interop, policy digests (PolicyPCR, PolicyNV,
// PolicyCpHash, PolicyAuthorize), the index read by tpm2-tools alone, every key-less write tried from a rogue boot,
// the capped running system and a failed boot's shell, rollback refused by the TPM itself, redefined indexes,
// A/B slots, and errors.
import { spawn } from 'node:child_process';
import { createHash, sign } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StepError } from '../../src/errors.ts';
import { approvalTicket, BOOT_FAILED_EVENT, capEventDigest, cappedValue, pcrCommandPolicy, PolicyError } from '../../src/tpm2/approved-policy.ts';
import { Tpm } from '../../src/tpm2/client.ts';
import { TPM_CC, TPM_EO } from '../../src/tpm2/constants.ts';
import { parsePcrSelection, withPcr } from '../../src/tpm2/pcr-selection.ts';
import { policyAuthorize, policyCommandCode, policySigned, policySignedMessage, ZERO_POLICY } from '../../src/tpm2/policy.ts';
import { loadPolicyKey, loadSigner, type PolicyKey } from '../../src/tpm2/policy-key.ts';
import { capPcr, readTrust, readTrustAndCap, type HeldConnection } from '../../src/trust/boot-read.ts';
import { commandName } from '../../src/tpm2/frame.ts';
import { comparePolicy, PROVISION_REF, TRUST_POLICY_REF, trustIndexName, trustIndexPublic, updatePolicy, writeCpHash } from '../../src/trust/policies.ts';
import { decodeRecord, encodeHeader, encodeRecord, encodeSlot, members, slotOffset, type TrustedImage, versionBytes } from '../../src/trust/record.ts';
import { parseUpdate, type TrustUpdate } from '../../src/trust/update-file.ts';
import { formatDigest, parseDigest } from '../../src/verity/digest.ts';
import { startSwtpm, type Swtpm } from '../helpers/swtpm.ts';
import { check, requireTools, ROOT, run, type RunResult } from '../helpers/tools.ts';

const NODE = path.join(ROOT, 'node_modules/.bin/node');
const MAIN = path.join(ROOT, 'src/cli/main.ts');
const KEY = path.join(ROOT, 'keys/test-policy-key.pem');
const PUB = path.join(ROOT, 'keys/test-policy-key.pub.pem');
const EC_KEY = path.join(ROOT, 'keys/test-policy-key-ec.pem');
const EC_PUB = path.join(ROOT, 'keys/test-policy-key-ec.pub.pem');
const INDEX = '0x01000e01';
const NV = 0x01000e01;
const PCRS = 'sha256:8,9';
const SIZE = 4096;
const D = (n: number) => `sha256:${`d${n}`.repeat(32)}`;
const D1 = D(1);
const D2 = D(2);
const D3 = D(3);
/** The attacker's digest: no trusted boot may ever print it. */
const D9 = D(9);

requireTools('swtpm', 'tpm2_pcrread', 'tpm2_pcrextend', 'tpm2_nvread', 'tpm2_nvdefine', 'tpm2_policynv', 'tpm2_policycphash', 'openssl');

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

async function reboot(tpm: Swtpm, state: 'trusted' | 'rogue'): Promise<void> {
  await tpm.restart();
  bootInto(tpm, state);
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

/** A fresh swtpm and a scratch directory (with `state` inside for the approvals), both gone after `body`. */
async function withTpm(body: (tpm: Swtpm, dir: string, state: string) => Promise<void>): Promise<void> {
  const tpm = await startSwtpm();
  const dir = tmpdir();
  try {
    await body(tpm, dir, path.join(dir, 'state'));
  } finally {
    await tpm.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function provision(tpm: Swtpm, state: string, digest = D1, ...extra: string[]): RunResult {
  return sealroot('provision', '--tpm', tpm.tcti, '--signing-key', KEY, '--digest', digest, '--size', String(SIZE), '--pcrs', PCRS, '--state', state, ...extra);
}

function trustedProvision(tpm: Swtpm, state: string, digest = D1, ...extra: string[]): void {
  const result = provision(tpm, state, digest, ...extra);
  assert.is(result.status, 0, result.stderr);
  assert.match(result.stdout, new RegExp(`^provisioned the trusted set \\(version 1 \\(${digest}\\); 2 slots\\) in NV index 0x01000e01 \\(name 000b[0-9a-f]{64}\\)`));
}

/** `trust sign` with the test key (or `key`), for the default slot counts unless told. */
function signFile(dir: string, version: number, digest: string, options: { key?: string; extra?: string[]; name?: string } = {}): string {
  const out = path.join(dir, options.name ?? `v${version}.trust`);
  const result = sealroot('trust', 'sign', '--signing-key', options.key ?? KEY, '--digest', digest, '--size', String(SIZE), '--version', String(version), '--out', out, ...(options.extra ?? []));
  assert.is(result.status, 0, result.stderr);
  return out;
}

function apply(tpm: Swtpm, ...args: string[]): RunResult {
  return sealroot('trust', 'apply', '--tpm', tpm.tcti, '--policy-key', PUB, ...args);
}

function unseal(tpm: Swtpm, state: string, ...extra: string[]): RunResult {
  return sealroot('unseal', '--tpm', tpm.tcti, '--pcrs', PCRS, '--state', state, '--policy-key', PUB, ...extra);
}

function expectSet(tpm: Swtpm, state: string, digests: string[], what: string): void {
  const result = unseal(tpm, state);
  assert.not.match(result.stdout + result.stderr, /d9d9d9d9/, `${what}: the attacker's digest was read`);
  assert.is(result.stdout, digests.map((digest) => `${digest}\n`).join(''), `${what}: ${result.stderr}`);
}

function image(version: number, digest: string): TrustedImage {
  return { version, size: SIZE, digest: parseDigest(digest) };
}

function readUpdate(file: string): TrustUpdate {
  return parseUpdate(fs.readFileSync(file, 'utf8'), file);
}

/** A session satisfying the index's authPolicy for TPM2_PolicyNV with the update's signed compare approval. */
async function compareSession(client: Tpm, policyKey: PolicyKey, update: TrustUpdate): Promise<number> {
  const ticket = await approvalTicket(client, policyKey, update.compare.policy, TRUST_POLICY_REF, update.compare.signature);
  const { handle } = await client.startPolicySession();
  await client.policyCommandCode(handle, TPM_CC.PolicyNV);
  await client.policyAuthorize(handle, update.compare.policy, TRUST_POLICY_REF, policyKey.name, ticket);
  return handle;
}

interface DirectWrite {
  /**
   * PolicyNV(header = `header`, default a 2-slot SHA-256 set; none with `header: null`) then PolicyNV(slot at this
   * offset < version), each authorized with `compareWith`'s compare approval; omitted: no PolicyNV.
   */
  nv?: { version: number; offset: number; compareWith: TrustUpdate; header?: Buffer | null };
  /** PolicyCommandCode before PolicyAuthorize (for approvals of a command-code policy). */
  commandCode?: number;
  /** PolicyCpHash of NV_Write(data, offset) on the index's actual Name; omitted: no PolicyCpHash. */
  cpHash?: { data: Buffer; offset: number };
  /** The approved policy and its signature, and the key that signed it. */
  approved: { policy: Buffer; signature: Buffer; key: PolicyKey };
  write: { data: Buffer; offset: number };
  nvIndex?: number;
}

/**
 * Drives the TPM directly (sealroot's client, none of sealroot's checks): what an attacker with the public update
 * files can send. Returns 'written' or the first step the TPM refused, with its response code.
 */
async function directWrite(tcti: string, attempt: DirectWrite): Promise<string> {
  const nvIndex = attempt.nvIndex ?? NV;
  const trusted = loadPolicyKey(PUB);
  const client = await Tpm.open(tcti);
  const handles: number[] = [];
  let step = 'start';
  try {
    const { name } = await client.nvReadPublic(nvIndex);
    const { handle } = await client.startPolicySession();
    handles.push(handle);
    if (attempt.nv !== undefined) {
      const header = attempt.nv.header === undefined ? encodeHeader('sha256', 2) : attempt.nv.header;
      if (header !== null) {
        step = 'PolicyNV(header)';
        const layout = await compareSession(client, trusted, attempt.nv.compareWith);
        handles.push(layout);
        await client.policyNv(nvIndex, handle, layout, header, 0, TPM_EO.EQ);
      }
      step = 'PolicyNV';
      const auth = await compareSession(client, trusted, attempt.nv.compareWith);
      handles.push(auth);
      await client.policyNv(nvIndex, handle, auth, versionBytes(attempt.nv.version), attempt.nv.offset, TPM_EO.UNSIGNED_LT);
    }
    if (attempt.commandCode !== undefined) await client.policyCommandCode(handle, attempt.commandCode);
    if (attempt.cpHash !== undefined) {
      step = 'PolicyCpHash';
      await client.policyCpHash(handle, writeCpHash(name, attempt.cpHash.data, attempt.cpHash.offset));
    }
    step = 'PolicyAuthorize';
    const ticket = await approvalTicket(client, attempt.approved.key, attempt.approved.policy, TRUST_POLICY_REF, attempt.approved.signature);
    await client.policyAuthorize(handle, attempt.approved.policy, TRUST_POLICY_REF, attempt.approved.key.name, ticket);
    step = 'NV_Write';
    await client.nvWrite(nvIndex, attempt.write.data, handle, attempt.write.offset);
    return 'written';
  } catch (error) {
    return `${step}: ${(error as Error).message}`;
  } finally {
    for (const handle of handles) await client.flush(handle).catch(() => {});
    await client.close();
  }
}

/** The signed write of `update` for `slot` of a `slots`-slot set. */
function signedWrite(update: TrustUpdate, slots: number, slot: number): { policy: Buffer; signature: Buffer; key: PolicyKey } {
  const write = update.writes.find((entry) => entry.slots === slots && entry.slot === slot)!;
  return { policy: write.policy, signature: write.signature, key: loadPolicyKey(PUB) };
}

interface ToolsApproval {
  policy: Buffer;
  signature: Buffer;
  /** PEM of the public key that signed it (RSA). */
  publicKey: string;
}

/** An approval of `policy` signed by the private key `keyFile` (the attacker's own key, typically). */
function toolsApproval(dir: string, keyFile: string, policy: Buffer): ToolsApproval {
  const publicKey = path.join(dir, `${path.basename(keyFile)}.pub.pem`);
  check('openssl', ['pkey', '-in', keyFile, '-pubout', '-out', publicKey]);
  return { policy, signature: sign('sha256', Buffer.concat([policy, TRUST_POLICY_REF]), fs.readFileSync(keyFile)), publicKey };
}

/**
 * tpm2-tools alone: a policy session built by `policySteps` (tpm2_policy* argument lists, each run with
 * -S session.ctx), then PolicyAuthorize of the approval, then `nvCommand` with the session. Returns the first
 * failing tool's result (its name first in stderr), or the NV command's.
 */
function toolsPolicyCommand(tcti: string, dir: string, approval: ToolsApproval, policySteps: string[][], nvCommand: string[]): RunResult {
  const file = (name: string) => path.join(dir, name);
  fs.writeFileSync(file('approved.policy'), approval.policy);
  fs.writeFileSync(file('ref.bin'), TRUST_POLICY_REF);
  fs.writeFileSync(file('message.bin'), Buffer.concat([approval.policy, TRUST_POLICY_REF]));
  fs.writeFileSync(file('signature.bin'), approval.signature);
  const steps: string[][] = [
    ['tpm2_loadexternal', '-C', 'o', '-G', 'rsa', '-u', approval.publicKey, '-c', file('signer.ctx'), '-n', file('signer.name')],
    ['tpm2_verifysignature', '-c', file('signer.ctx'), '-g', 'sha256', '-m', file('message.bin'), '-f', 'rsassa', '-s', file('signature.bin'), '-t', file('verified.tkt')],
    ['tpm2_flushcontext', '-t'],
    ['tpm2_startauthsession', '--policy-session', '-S', file('session.ctx')],
    ...policySteps.map(([tool, ...args]) => [tool!, '-S', file('session.ctx'), ...args]),
    ['tpm2_policyauthorize', '-S', file('session.ctx'), '-i', file('approved.policy'), '-q', file('ref.bin'), '-n', file('signer.name'), '-t', file('verified.tkt')],
  ];
  try {
    for (const [tool, ...args] of steps) {
      const result = tools(tool!, args, tcti);
      if (result.status !== 0) return { ...result, stderr: `${tool}: ${result.stderr}` };
    }
    const result = tools(nvCommand[0]!, [...nvCommand.slice(1), '-P', `session:${file('session.ctx')}`], tcti);
    return { ...result, stderr: `${nvCommand[0]}: ${result.stderr}` };
  } finally {
    run('tpm2_flushcontext', ['-T', tcti, file('session.ctx')]);
    run('tpm2_flushcontext', ['-T', tcti, '-t']);
    run('tpm2_flushcontext', ['-T', tcti, '-s']);
  }
}

/**
 * tpm2-tools alone: a compare session (PolicyCommandCode(PolicyNV) + PolicyAuthorize of the update's signed compare
 * approval) saved as `compare.ctx`, for tpm2_policynv -P session:compare.ctx.
 */
function toolsCompareSession(tcti: string, dir: string, update: TrustUpdate, context = 'compare.ctx'): string {
  const file = (name: string) => path.join(dir, name);
  fs.writeFileSync(file('compare.policy'), update.compare.policy);
  fs.writeFileSync(file('ref.bin'), TRUST_POLICY_REF);
  fs.writeFileSync(file('compare-message.bin'), Buffer.concat([update.compare.policy, TRUST_POLICY_REF]));
  fs.writeFileSync(file('compare.sig'), update.compare.signature);
  const steps: string[][] = [
    ['tpm2_loadexternal', '-C', 'o', '-G', 'rsa', '-u', PUB, '-c', file('key.ctx'), '-n', file('key.name')],
    ['tpm2_verifysignature', '-c', file('key.ctx'), '-g', 'sha256', '-m', file('compare-message.bin'), '-f', 'rsassa', '-s', file('compare.sig'), '-t', file('compare.tkt')],
    ['tpm2_flushcontext', '-t'],
    ['tpm2_startauthsession', '--policy-session', '-S', file(context)],
    ['tpm2_policycommandcode', '-S', file(context), 'TPM2_CC_PolicyNV'],
    ['tpm2_policyauthorize', '-S', file(context), '-i', file('compare.policy'), '-q', file('ref.bin'), '-n', file('key.name'), '-t', file('compare.tkt')],
  ];
  for (const [tool, ...args] of steps) check(tool!, ['-T', tcti, ...args]);
  return file(context);
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

test('software policy digests equal the TPM (PolicyGetDigest) and tpm2-tools trial sessions: read, compare, update', async () => {
  const tpm = await startSwtpm();
  const dir = tmpdir();
  const file = (name: string) => path.join(dir, name);
  try {
    bootInto(tpm, 'trusted');
    trustedProvision(tpm, file('state'));
    const policyKey = loadPolicyKey(PUB);
    const selection = withPcr(parsePcrSelection(PCRS), 15);
    const v2 = readUpdate(signFile(dir, 2, D2));
    const v2Slot1 = encodeSlot(image(2, D2));
    const offset1 = slotOffset('sha256', 1);
    const client = await Tpm.open(tpm.tcti);
    let readFromTpm: Buffer;
    let updateFromTpm: Buffer;
    let values;
    try {
      values = await client.pcrRead(selection);
      const session = await client.startPolicySession(true);
      await client.policyPcr(session.handle, selection);
      await client.policyCommandCode(session.handle, TPM_CC.NV_Read);
      readFromTpm = await client.policyGetDigest(session.handle);
      await client.flush(session.handle);
      // The update policy for slot 1 of 2, built by the TPM: PolicyNV (authorized by the compare approval) + PolicyCpHash.
      const trial = await client.startPolicySession(true);
      const layout = await compareSession(client, policyKey, v2);
      await client.policyNv(NV, trial.handle, layout, encodeHeader('sha256', 2), 0, TPM_EO.EQ);
      await client.flush(layout);
      const auth = await compareSession(client, policyKey, v2);
      await client.policyNv(NV, trial.handle, auth, versionBytes(2), offset1, TPM_EO.UNSIGNED_LT);
      await client.flush(auth);
      const { name } = await client.nvReadPublic(NV);
      assert.is(name.toString('hex'), trustIndexName(NV, policyKey, 100, true).toString('hex'));
      await client.policyCpHash(trial.handle, writeCpHash(name, v2Slot1, offset1));
      updateFromTpm = await client.policyGetDigest(trial.handle);
      await client.flush(trial.handle);
    } finally {
      await client.close();
    }
    const software = pcrCommandPolicy(selection, values, TPM_CC.NV_Read);
    assert.is(software.toString('hex'), readFromTpm.toString('hex'));
    const signedSlot1 = v2.writes.find((write) => write.slots === 2 && write.slot === 1)!.policy;
    assert.is(updateFromTpm.toString('hex'), signedSlot1.toString('hex'), 'the TPM computes the policy the update file signed');
    assert.is(updatePolicy(policyKey, { nvIndex: NV, algorithm: 'sha256', slots: 2, slot: 1 }, image(2, D2)).toString('hex'), signedSlot1.toString('hex'));

    // tpm2-tools, independently: trial sessions for the read and compare policies, PolicyAuthorize, the index's authPolicy.
    fs.writeFileSync(file('ref.bin'), TRUST_POLICY_REF);
    const steps: string[][] = [
      ['tpm2_startauthsession', '-S', file('trial.ctx')],
      ['tpm2_policypcr', '-S', file('trial.ctx'), '-l', 'sha256:8,9,15', '-L', file('pcr.policy')],
      ['tpm2_policycommandcode', '-S', file('trial.ctx'), '-L', file('cc.policy'), 'TPM2_CC_NV_Read'],
      ['tpm2_flushcontext', file('trial.ctx')],
      ['tpm2_startauthsession', '-S', file('trial-compare.ctx')],
      ['tpm2_policycommandcode', '-S', file('trial-compare.ctx'), '-L', file('compare.policy'), 'TPM2_CC_PolicyNV'],
      ['tpm2_flushcontext', file('trial-compare.ctx')],
      ['tpm2_loadexternal', '-C', 'o', '-G', 'rsa', '-u', PUB, '-c', file('key.ctx'), '-n', file('key.name')],
      ['tpm2_flushcontext', '-t'],
      ['tpm2_startauthsession', '-S', file('trial2.ctx')],
      ['tpm2_policyauthorize', '-S', file('trial2.ctx'), '-L', file('authorize.policy'), '-i', file('cc.policy'), '-q', file('ref.bin'), '-n', file('key.name')],
      ['tpm2_flushcontext', file('trial2.ctx')],
    ];
    for (const [tool, ...args] of steps) check(tool!, ['-T', tpm.tcti, ...args]);
    assert.is(fs.readFileSync(file('cc.policy')).toString('hex'), software.toString('hex'));
    assert.is(fs.readFileSync(file('compare.policy')).toString('hex'), comparePolicy().toString('hex'));
    assert.is(fs.readFileSync(file('compare.policy')).toString('hex'), v2.compare.policy.toString('hex'));
    assert.is(fs.readFileSync(file('key.name')).toString('hex'), policyKey.name.toString('hex'));
    const authPolicy = policyAuthorize(policyKey.name, TRUST_POLICY_REF).toString('hex');
    assert.is(fs.readFileSync(file('authorize.policy')).toString('hex'), authPolicy);
    assert.match(check('tpm2_nvreadpublic', ['-T', tpm.tcti, INDEX]), new RegExp(`authorization policy: ${authPolicy}`, 'i'));

    // tpm2_policynv + tpm2_policycphash (cpHash computed by tpm2_nvwrite --cphash, which does not write) in a trial session.
    const compare = toolsCompareSession(tpm.tcti, dir, v2);
    const layout = toolsCompareSession(tpm.tcti, dir, v2, 'layout.ctx');
    fs.writeFileSync(file('header.bin'), encodeHeader('sha256', 2));
    fs.writeFileSync(file('v2.version'), versionBytes(2));
    fs.writeFileSync(file('v2.slot'), v2Slot1);
    const toolSteps: string[][] = [
      ['tpm2_startauthsession', '-S', file('trial-update.ctx')],
      ['tpm2_policynv', '-S', file('trial-update.ctx'), '-i', file('header.bin'), '--offset', '0', '-C', INDEX, '-P', `session:${layout}`, INDEX, 'eq'],
      ['tpm2_policynv', '-S', file('trial-update.ctx'), '-i', file('v2.version'), '--offset', String(offset1), '-C', INDEX, '-P', `session:${compare}`, '-L', file('nv.policy'), INDEX, 'ult'],
      ['tpm2_nvwrite', INDEX, '-C', INDEX, '-i', file('v2.slot'), '--offset', String(offset1), '--cphash', file('cp.hash')],
      ['tpm2_policycphash', '-S', file('trial-update.ctx'), '--cphash-input', file('cp.hash'), '-L', file('update.policy')],
      ['tpm2_flushcontext', file('trial-update.ctx')],
      ['tpm2_flushcontext', compare],
      ['tpm2_flushcontext', layout],
    ];
    for (const [tool, ...args] of toolSteps) check(tool!, ['-T', tpm.tcti, ...args]);
    const cpHash = fs.readFileSync(file('cp.hash'));
    // tpm2-tools stores the cpHash as a TPMT_HA-like blob (hash algorithm, then the digest).
    assert.is(cpHash.subarray(cpHash.length - 32).toString('hex'), writeCpHash(trustIndexName(NV, policyKey, 100, true), v2Slot1, offset1).toString('hex'));
    assert.is(fs.readFileSync(file('update.policy')).toString('hex'), signedSlot1.toString('hex'), 'tpm2-tools computes the policy the update file signed');
    // tpm2_nvwrite --cphash wrote nothing: slot 1 is still empty (the set reads D1 alone).
    await reboot(tpm, 'trusted');
    expectSet(tpm, file('state'), [D1], 'after tpm2_nvwrite --cphash');
  } finally {
    await tpm.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the trusted set is read by tpm2-tools alone (PolicyPCR + PolicyCommandCode + PolicyAuthorize + NV_Read; commands shown)', async () => {
  const tpm = await startSwtpm();
  const dir = tmpdir();
  try {
    bootInto(tpm, 'trusted');
    const state = path.join(dir, 'state');
    trustedProvision(tpm, state);
    assert.match(apply(tpm, signFile(dir, 2, D2)).stdout, /applied into slot 1/);
    // The read approval exactly as approvals.json holds it (signature made by provision), loaded by tpm2-tools.
    const approvals = (JSON.parse(fs.readFileSync(path.join(state, 'approvals.json'), 'utf8')) as { approvals: { policy: string; signature: string }[] }).approvals;
    assert.is(approvals.length, 1);
    const approval = { policy: Buffer.from(approvals[0]!.policy, 'hex'), signature: Buffer.from(approvals[0]!.signature, 'hex'), publicKey: PUB };
    const values = new Map([['sha256:8', TRUSTED_VALUES[8]], ['sha256:9', TRUSTED_VALUES[9]], ['sha256:15', ZERO]]);
    assert.is(approval.policy.toString('hex'), pcrCommandPolicy(withPcr(parsePcrSelection(PCRS), 15), values, TPM_CC.NV_Read).toString('hex'));
    const out = path.join(dir, 'record.bin');
    const read = toolsPolicyCommand(tpm.tcti, dir, approval, [['tpm2_policypcr', '-l', 'sha256:8,9,15'], ['tpm2_policycommandcode', 'TPM2_CC_NV_Read']],
      ['tpm2_nvread', INDEX, '-C', INDEX, '-s', '100', '-o', out]);
    assert.is(read.status, 0, read.stderr);
    const record = fs.readFileSync(out);
    assert.is(record.subarray(0, 4).toString('hex'), '01010200');
    const set = decodeRecord(record);
    assert.equal(members(set).map((entry) => [entry.version, `sha256:${entry.digest.bytes.toString('hex')}`, entry.size]), [[2, D2, SIZE], [1, D1, SIZE]]);
    const pub = check('tpm2_nvreadpublic', ['-T', tpm.tcti, INDEX]);
    assert.match(pub, /name: 000b[0-9a-f]{64}/);
    assert.is(/name: ([0-9a-f]+)/.exec(pub)![1], trustIndexName(NV, loadPolicyKey(PUB), 100, true).toString('hex'));
    assert.match(pub, /value: 0x20080008/);
    assert.match(pub, /friendly: policywrite\|policyread\|written/);
    assert.match(pub, /size: 100/);
    // The index is readable only through the policy: owner auth and the index's authValue are refused.
    assert.is.not(tools('tpm2_nvread', [INDEX, '-C', 'o', '-s', '100'], tpm.tcti).status, 0);
    assert.is.not(tools('tpm2_nvread', [INDEX, '-C', INDEX, '-s', '100'], tpm.tcti).status, 0);
  } finally {
    await tpm.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * Every key-less write an attacker on this machine can try, in whatever boot state the TPM is in now (none may
 * change the set). `v2` is a genuine signed update (public: it ships with the image).
 */
async function keylessWrites(tpm: Swtpm, dir: string, state: string, where: string): Promise<void> {
  const attackerKey = path.join(dir, 'attacker.pem');
  if (!fs.existsSync(attackerKey)) check('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', attackerKey]);
  const attacker = loadSigner(attackerKey);
  const v2File = path.join(dir, 'v2.trust');
  if (!fs.existsSync(v2File)) signFile(dir, 2, D2);
  const v2 = readUpdate(v2File);
  const otherIndexFile = path.join(dir, 'v2-other-index.trust');
  if (!fs.existsSync(otherIndexFile)) signFile(dir, 2, D2, { name: 'v2-other-index.trust', extra: ['--nv-index', '0x01000e02'] });
  const otherIndex = readUpdate(otherIndexFile);
  const forgedFile = path.join(dir, 'v9-attacker.trust');
  if (!fs.existsSync(forgedFile)) signFile(dir, 9, D9, { key: attackerKey, name: 'v9-attacker.trust' });
  const attempt = `${where}:`;
  const refusedBy = (result: RunResult, status: number, message: RegExp, what: string) => {
    assert.is(result.status, status, `${attempt} ${what}: ${result.stdout}${result.stderr}`);
    assert.match(result.stderr, message, `${attempt} ${what}`);
  };
  // On an index that was never written, PolicyNV itself fails first (TPM_RC_NV_UNINITIALIZED).
  const unwritten = /^PolicyNV(\(header\))?: .*TPM_RC_NV_UNINITIALIZED/;
  const notWritten = (outcome: string, message: RegExp, what: string) => {
    assert.is.not(outcome, 'written', `${attempt} ${what} wrote the index`);
    assert.match(outcome, where.includes('unwritten') && unwritten.test(outcome) ? unwritten : message, `${attempt} ${what}: ${outcome}`);
  };
  const d9 = path.join(dir, 'd9-slot.bin');
  fs.writeFileSync(d9, encodeSlot(image(9, D9)));
  const offset0 = slotOffset('sha256', 0);
  const offset1 = slotOffset('sha256', 1);

  // sealroot itself: provision without a key is a usage error; with the attacker's key the index is not its index.
  refusedBy(sealroot('provision', '--tpm', tpm.tcti, '--digest', D9, '--size', '4096', '--pcrs', PCRS, '--state', state, '--policy-key', PUB), 2,
    /--signing-key is required/, 'provision without --signing-key');
  refusedBy(sealroot('provision', '--tpm', tpm.tcti, '--signing-key', attackerKey, '--digest', D9, '--size', '4096', '--pcrs', PCRS, '--state', path.join(dir, 'attacker-state')), 1,
    /NV index 0x1000e01 exists and is not sealroot's for this policy key/, 'provision with the attacker\'s key');
  refusedBy(sealroot('provision', '--tpm', tpm.tcti, '--signing-key', attackerKey, '--policy-key', PUB, '--digest', D9, '--size', '4096', '--pcrs', PCRS, '--state', path.join(dir, 'attacker-state')), 2,
    /--signing-key is not the private half of --policy-key/, 'provision with the attacker\'s key and the trusted public key');
  refusedBy(apply(tpm, forgedFile), 1, /version 9 \(sha256:d9d9.*\) is not signed by the policy key|was defined but never written/, 'trust apply of an attacker-signed update');
  refusedBy(apply(tpm, otherIndexFile), 1, /the update is for NV index 0x1000e02, not NV index 0x1000e01/, 'trust apply of an update for another index');

  // tpm2-tools: owner auth, the index's authValue, PolicyAuthorize with the attacker's own approval of NV_Write.
  const ownerWrite = tools('tpm2_nvwrite', [INDEX, '-C', 'o', '-i', d9], tpm.tcti);
  assert.is.not(ownerWrite.status, 0, `${attempt} tpm2_nvwrite -C o`);
  assert.match(ownerWrite.stderr, /0x149|NV_AUTHORIZATION|authorization/i, `${attempt} tpm2_nvwrite -C o`);
  const authWrite = tools('tpm2_nvwrite', [INDEX, '-C', INDEX, '-i', d9, '--offset', String(offset0)], tpm.tcti);
  assert.is.not(authWrite.status, 0, `${attempt} tpm2_nvwrite -C index`);
  // The other NV commands that change an index (or lock it: a denial of service): refused by the TPM for an ordinary,
  // policy-only index without WRITEDEFINE/WRITE_STCLEAR/READ_STCLEAR.
  for (const [tool, ...args] of [
    ['tpm2_nvextend', '-C', 'o', '-i', d9, INDEX], ['tpm2_nvextend', '-C', INDEX, '-i', d9, INDEX], ['tpm2_nvsetbits', '-C', 'o', '-i', '1', INDEX],
    ['tpm2_nvincrement', '-C', 'o', INDEX], ['tpm2_nvwritelock', '-C', 'o', INDEX], ['tpm2_nvwritelock', '-C', INDEX, INDEX],
    ['tpm2_nvreadlock', '-C', 'o', INDEX], ['tpm2_nvreadlock', '-C', INDEX, INDEX], ['tpm2_nvundefine', '-C', INDEX, INDEX],
    ['tpm2_changeauth', '-c', INDEX, 'attacker'],
  ]) {
    const result = tools(tool!, args, tpm.tcti);
    assert.is.not(result.status, 0, `${attempt} ${tool} ${args.join(' ')}: ${result.stdout}`);
  }
  const ownApproval = toolsApproval(dir, attackerKey, policyCommandCode(ZERO_POLICY, TPM_CC.NV_Write));
  const foreign = toolsPolicyCommand(tpm.tcti, dir, ownApproval, [['tpm2_policycommandcode', 'TPM2_CC_NV_Write']], ['tpm2_nvwrite', INDEX, '-C', INDEX, '-i', d9, '--offset', String(offset0)]);
  assert.is.not(foreign.status, 0, `${attempt} attacker-approved NV_Write`);
  assert.match(foreign.stderr, /^tpm2_nvwrite: .*NV_Write\(0x99D\) - tpm:session\(1\):a policy check failed/s, `${attempt} attacker-approved NV_Write: ${foreign.stderr}`);
  // The attacker's approval of a PolicyNV + PolicyCpHash update of its own (what a signed update looks like).
  const ownUpdate = updatePolicy(attacker.policyKey, { nvIndex: NV, algorithm: 'sha256', slots: 2, slot: 0 }, image(9, D9));
  notWritten(await directWrite(tpm.tcti, {
    nv: { version: 9, offset: offset0, compareWith: v2 }, cpHash: { data: encodeSlot(image(9, D9)), offset: offset0 },
    approved: { policy: ownUpdate, signature: attacker.signRaw(Buffer.concat([ownUpdate, TRUST_POLICY_REF])), key: attacker.policyKey },
    write: { data: encodeSlot(image(9, D9)), offset: offset0 },
  }), /^(PolicyAuthorize|NV_Write): .*TPM_RC_(POLICY_FAIL|VALUE)/, 'an attacker-signed update policy');

  // The signed read approval (public, in approvals.json) used for NV_Write.
  const approvals = (JSON.parse(fs.readFileSync(path.join(state, 'approvals.json'), 'utf8')) as { approvals: { policy: string; signature: string }[] }).approvals;
  for (const entry of approvals) {
    const readApproval = { policy: Buffer.from(entry.policy, 'hex'), signature: Buffer.from(entry.signature, 'hex'), publicKey: PUB };
    const reuse = toolsPolicyCommand(tpm.tcti, dir, readApproval, [['tpm2_policypcr', '-l', 'sha256:8,9,15'], ['tpm2_policycommandcode', 'TPM2_CC_NV_Read']],
      ['tpm2_nvwrite', INDEX, '-C', INDEX, '-i', d9, '--offset', String(offset0)]);
    assert.is.not(reuse.status, 0, `${attempt} a read approval used for NV_Write`);
    // Pre-cap trusted boot: PolicyAuthorize accepts the read policy, NV_Write is refused (TPM_RC_POLICY_CC, 0x9a4);
    // any other state: the PCRs do not match the approval (PolicyAuthorize: TPM_RC_VALUE).
    assert.match(reuse.stderr, /^(tpm2_nvwrite: .*NV_Write\(0x9A4\)|tpm2_policyauthorize: .*PolicyAuthorize\(0x1C4\))/s, `${attempt} a read approval used for NV_Write: ${reuse.stderr}`);
  }

  // The genuine signed update v2, misused: other bytes under its policy (cpHash mismatch), another slot than signed,
  // the write for another slot count, for another index, without PolicyNV, and PolicyNV skipped via a second session.
  const v2Slot1 = encodeSlot(image(2, D2));
  notWritten(await directWrite(tpm.tcti, {
    nv: { version: 2, offset: offset1, compareWith: v2 }, cpHash: { data: v2Slot1, offset: offset1 }, approved: signedWrite(v2, 2, 1),
    write: { data: encodeSlot(image(2, D9)), offset: offset1 },
  }), /^NV_Write: .*TPM_RC_(POLICY_FAIL|CPHASH)/, 'other bytes under the signed v2 policy');
  notWritten(await directWrite(tpm.tcti, {
    nv: { version: 2, offset: offset1, compareWith: v2 }, cpHash: { data: encodeSlot(image(2, D9)), offset: offset1 }, approved: signedWrite(v2, 2, 1),
    write: { data: encodeSlot(image(2, D9)), offset: offset1 },
  }), /^PolicyAuthorize: .*TPM_RC_VALUE/, 'a cpHash of other bytes under the signed v2 policy');
  notWritten(await directWrite(tpm.tcti, {
    nv: { version: 2, offset: offset0, compareWith: v2 }, cpHash: { data: v2Slot1, offset: offset0 }, approved: signedWrite(v2, 2, 0),
    write: { data: v2Slot1, offset: offset1 },
  }), /^NV_Write: .*TPM_RC_(POLICY_FAIL|CPHASH)/, 'v2 signed for slot 0 written into slot 1');
  notWritten(await directWrite(tpm.tcti, {
    nv: { version: 2, offset: offset1, compareWith: v2 }, cpHash: { data: v2Slot1, offset: offset1 }, approved: signedWrite(v2, 2, 0),
    write: { data: v2Slot1, offset: offset1 },
  }), /^PolicyAuthorize: .*TPM_RC_VALUE/, 'slot 0\'s signed write authorizing slot 1');
  // Slot 1 of 3 has the same offset and bytes as slot 1 of 2: only the index's Name (its size) tells them apart.
  notWritten(await directWrite(tpm.tcti, {
    nv: { version: 2, offset: offset1, compareWith: v2 }, cpHash: { data: v2Slot1, offset: offset1 }, approved: signedWrite(v2, 3, 1),
    write: { data: v2Slot1, offset: offset1 },
  }), /^PolicyAuthorize: .*TPM_RC_VALUE/, 'v2 signed for 3 slots on a 2-slot index');
  const otherIndexWrite = otherIndex.writes.find((write) => write.slots === 2 && write.slot === 1)!;
  notWritten(await directWrite(tpm.tcti, {
    nv: { version: 2, offset: offset1, compareWith: v2 }, cpHash: { data: v2Slot1, offset: offset1 },
    approved: { policy: otherIndexWrite.policy, signature: otherIndexWrite.signature, key: loadPolicyKey(PUB) }, write: { data: v2Slot1, offset: offset1 },
  }), /^PolicyAuthorize: .*TPM_RC_VALUE/, 'v2 signed for NV index 0x01000e02');
  notWritten(await directWrite(tpm.tcti, {
    cpHash: { data: encodeSlot(image(2, D9)), offset: offset1 }, approved: signedWrite(v2, 2, 1), write: { data: encodeSlot(image(2, D9)), offset: offset1 },
  }), /^PolicyAuthorize: .*TPM_RC_VALUE/, 'the signed v2 policy without PolicyNV');
  // The compare approval (PolicyCommandCode(PolicyNV)) used to authorize NV_Write.
  notWritten(await directWrite(tpm.tcti, {
    commandCode: TPM_CC.PolicyNV, approved: { policy: v2.compare.policy, signature: v2.compare.signature, key: loadPolicyKey(PUB) },
    write: { data: encodeSlot(image(9, D9)), offset: offset0 },
  }), /^NV_Write: .*TPM_RC_POLICY_CC/, 'the compare approval used for NV_Write');
  notWritten(await directWrite(tpm.tcti, {
    nv: { version: 2, offset: offset1, compareWith: v2, header: null }, cpHash: { data: v2Slot1, offset: offset1 }, approved: signedWrite(v2, 2, 1),
    write: { data: v2Slot1, offset: offset1 },
  }), /^PolicyAuthorize: .*TPM_RC_VALUE/, 'the signed v2 policy without its header comparison');
  notWritten(await directWrite(tpm.tcti, {
    nv: { version: 2, offset: offset1, compareWith: v2, header: encodeHeader('sha256', 3) }, cpHash: { data: v2Slot1, offset: offset1 }, approved: signedWrite(v2, 3, 1),
    write: { data: v2Slot1, offset: offset1 },
  }), /^PolicyNV\(header\): .*TPM_RC_POLICY \[0x126\]/, 'v2 signed for 3 slots, with its 3-slot header, on a 2-slot index');
}

test('the boot\'s read and cap: 10 TPM commands on one connection (banks never asked, NV_Read ends the session, no PolicyGetDigest with one approval, the cap one PCR_Event); nothing stays loaded', () => withTpm(async (tpm, _dir, state) => {
  bootInto(tpm, 'trusted');
  trustedProvision(tpm, state);
  const client = await Tpm.open(tpm.tcti);
  const commands: string[] = [];
  const transmit = client.transport.transmit.bind(client.transport);
  client.transport.transmit = async (frame: Buffer) => {
    commands.push(commandName(frame.readUInt32BE(6)));
    return transmit(frame);
  };
  const held: HeldConnection = { tpm: client };
  const set = await readTrust({ tcti: tpm.tcti, pcrs: PCRS, stateDir: state, policyKeyPath: PUB }, held);
  assert.is(held.tpm, client, 'the read keeps the connection for the cap');
  await capPcr({ tcti: tpm.tcti }, held);
  assert.is(held.tpm, undefined, 'the cap closed it');
  assert.equal(members(set).map((entry) => formatDigest(entry.digest)), [D1]);
  assert.equal(commands, ['NV_ReadPublic', 'StartAuthSession', 'PolicyPCR', 'PolicyCommandCode', 'LoadExternal',
    'VerifySignature', 'FlushContext', 'PolicyAuthorize', 'NV_Read', 'PCR_Event'].map((name) => `TPM2_${name}`));
  assert.is(check('tpm2_getcap', ['-T', tpm.tcti, 'handles-loaded-session']).trim(), '', 'no session left loaded');
  assert.is(check('tpm2_getcap', ['-T', tpm.tcti, 'handles-transient']).trim(), '', 'no object left loaded');
  assert.is(tpm2PcrRead(tpm.tcti, 'sha256:15').get('sha256:15'), cappedValue('sha256', ZERO).toString('hex'));
}));

test('the cap is one TPM2_PCR_Event: PCR 15 in every allocated bank becomes cappedValue(bank, before), also after a reallocation; a selected bank left unallocated is named once no approval matched', () => withTpm(async (tpm, _dir, state) => {
  bootInto(tpm, 'trusted');
  trustedProvision(tpm, state);
  const banks = ['sha1', 'sha256', 'sha384', 'sha512'] as const;
  const pcr15 = (list: readonly string[]) => list.map((bank) => `${bank}:15`).join('+');
  const lines: string[] = [];
  const log = { info: (line: string) => lines.push(line), notice: () => {}, warn: () => {}, error: () => {} };
  // PCR 15 holds something else than its reset value in each bank before the cap (extended by tpm2-tools).
  check('tpm2_pcrextend', ['-T', tpm.tcti, `15:${banks.map((bank, i) => `${bank}=${'3c'.repeat([20, 32, 48, 64][i]!)}`).join(',')}`]);
  const before = tpm2PcrRead(tpm.tcti, pcr15(banks));
  assert.is(before.size, 4);
  await capPcr({ tcti: tpm.tcti, log });
  const capped = tpm2PcrRead(tpm.tcti, pcr15(banks));
  for (const bank of banks) {
    assert.is(capped.get(`${bank}:15`), cappedValue(bank, Buffer.from(before.get(`${bank}:15`)!, 'hex')).toString('hex'), bank);
  }
  await capPcr({ tcti: tpm.tcti, event: 'boot-failed', log });
  const failed = tpm2PcrRead(tpm.tcti, pcr15(banks));
  for (const bank of banks) {
    const expected = createHash(bank).update(Buffer.from(capped.get(`${bank}:15`)!, 'hex')).update(capEventDigest(bank, BOOT_FAILED_EVENT)).digest('hex');
    assert.is(failed.get(`${bank}:15`), expected, `boot failed, ${bank}`);
  }
  assert.equal(lines, [
    'tpm: capped PCR 15 in every allocated bank (TPM2_PCR_Event digests: sha1, sha256, sha384, sha512)',
    'tpm: boot failed: recorded in PCR 15 in every allocated bank (TPM2_PCR_Event digests: sha1, sha256, sha384, sha512)',
  ]);

  // sha1 and sha512 deallocated: the TPM still returns a digest per hash it implements, and extends the banks it has.
  check('tpm2_pcrallocate', ['-T', tpm.tcti, 'sha1:none+sha256:all+sha384:all+sha512:none']);
  await reboot(tpm, 'trusted');
  const recording = async () => {
    const client = await Tpm.open(tpm.tcti);
    const commands: string[] = [];
    const transmit = client.transport.transmit.bind(client.transport);
    client.transport.transmit = async (frame: Buffer) => {
      commands.push(commandName(frame.readUInt32BE(6)).slice(5));
      return transmit(frame);
    };
    return { held: { tpm: client } as HeldConnection, commands };
  };
  const boot = await recording();
  const set = await readTrust({ tcti: tpm.tcti, pcrs: PCRS, stateDir: state, policyKeyPath: PUB }, boot.held);
  assert.equal(members(set).map((entry) => formatDigest(entry.digest)), [D1]);
  lines.length = 0;
  await capPcr({ tcti: tpm.tcti, log }, boot.held);
  assert.not.ok(boot.commands.includes('GetCapability'), boot.commands.join(' '));
  assert.is(boot.commands.at(-1), 'PCR_Event');
  assert.equal(lines, ['tpm: capped PCR 15 in every allocated bank (TPM2_PCR_Event digests: sha1, sha256, sha384, sha512)']);
  const reallocated = tpm2PcrRead(tpm.tcti, pcr15(banks));
  assert.equal([...reallocated.keys()], ['sha256:15', 'sha384:15']);
  assert.is(reallocated.get('sha256:15'), cappedValue('sha256', Buffer.alloc(32)).toString('hex'));
  assert.is(reallocated.get('sha384:15'), cappedValue('sha384', Buffer.alloc(48)).toString('hex'));

  // A selection naming the deallocated sha1 bank: no approval matches, then (only then) the banks are asked.
  const unallocated = await recording();
  const error = await readTrust({ tcti: tpm.tcti, pcrs: 'sha1:8', stateDir: state, policyKeyPath: PUB }, unallocated.held).then(() => undefined, (caught: unknown) => caught);
  await unallocated.held.tpm?.close();
  assert.instance(error, StepError);
  assert.instance((error as StepError).cause, PolicyError);
  assert.is((error as Error).message, 'tpm: cannot read the trusted set: PCR bank sha1 is not allocated on this TPM (allocated: sha256, sha384)');
  assert.is(unallocated.commands.filter((name) => name === 'GetCapability').length, 1, unallocated.commands.join(' '));
  assert.is(unallocated.commands.at(-1), 'GetCapability', unallocated.commands.join(' '));
  assert.ok(unallocated.commands.includes('PolicyGetDigest'), unallocated.commands.join(' '));
}));

test('the boot\'s read and cap load no node:crypto (a child process reading and capping against swtpm)', () => withTpm(async (tpm, _dir, state) => {
  bootInto(tpm, 'trusted');
  trustedProvision(tpm, state);
  const child = `
    const { capPcr, readTrust } = await import(${JSON.stringify(path.join(ROOT, 'src/trust/boot-read.ts'))});
    const { members } = await import(${JSON.stringify(path.join(ROOT, 'src/trust/record.ts'))});
    const held = {};
    const set = await readTrust({ tcti: ${JSON.stringify(tpm.tcti)}, pcrs: ${JSON.stringify(PCRS)}, stateDir: ${JSON.stringify(state)}, policyKeyPath: ${JSON.stringify(PUB)} }, held);
    await capPcr({ tcti: ${JSON.stringify(tpm.tcti)} }, held);
    const builtins = process.moduleLoadList.filter((name) => name.startsWith('NativeModule ')).map((name) => name.slice(13));
    console.log(JSON.stringify({ members: members(set).length, builtins }));
  `;
  const result = run(NODE, ['--input-type=module', '-e', child], { env: ENV });
  assert.is(result.status, 0, result.stderr);
  const { members: count, builtins } = JSON.parse(result.stdout) as { members: number; builtins: string[] };
  assert.is(count, 1);
  assert.ok(builtins.includes('net'), `the recorder saw the TPM's socket: ${builtins.join(' ')}`);
  assert.not.ok(builtins.some((name) => name === 'crypto' || name.startsWith('internal/crypto/')), `node:crypto loaded: ${builtins.filter((name) => name.includes('crypto')).join(' ')}`);
  assert.is(tpm2PcrRead(tpm.tcti, 'sha256:15').get('sha256:15'), cappedValue('sha256', ZERO).toString('hex'));
}));

test('a single read approval with a forged signature: the TPM\'s VerifySignature refuses it (TPM_RC_SIGNATURE), the software check gives the line; nothing read, nothing left loaded', () => withTpm(async (tpm, dir, state) => {
  bootInto(tpm, 'trusted');
  trustedProvision(tpm, state);
  const file = path.join(state, 'approvals.json');
  const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as { approvals: { purpose: string; signature: string; policy: string }[] };
  assert.is(parsed.approvals.filter((a) => a.purpose === 'read').length, 1);
  const otherKey = path.join(dir, 'other.pem');
  check('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', otherKey]);
  const read = parsed.approvals.find((a) => a.purpose === 'read')!;
  const forgeries = {
    'another key': sign('sha256', Buffer.concat([Buffer.from(read.policy, 'hex'), TRUST_POLICY_REF]), fs.readFileSync(otherKey)).toString('hex'),
    'a short signature': 'abcd',
    'a signature larger than a TPM command': 'ab'.repeat(70_000),
  };
  for (const [what, signature] of Object.entries(forgeries)) {
    read.signature = signature;
    fs.writeFileSync(file, JSON.stringify(parsed));
    const client = await Tpm.open(tpm.tcti);
    const commands: string[] = [];
    const transmit = client.transport.transmit.bind(client.transport);
    client.transport.transmit = async (frame: Buffer) => {
      const response = await transmit(frame);
      commands.push(`${commandName(frame.readUInt32BE(6)).slice(5)}:${response.readUInt32BE(6).toString(16)}`);
      return response;
    };
    const held: HeldConnection = { tpm: client };
    const error = await readTrust({ tcti: tpm.tcti, pcrs: PCRS, stateDir: state, policyKeyPath: PUB }, held).then(() => undefined, (caught: unknown) => caught);
    await capPcr({ tcti: tpm.tcti }, held);
    assert.instance(error, StepError, what);
    assert.match((error as Error).message, /^tpm: cannot read the trusted set: the read approval for policy [0-9a-f]{64} is not signed by the policy key$/, what);
    // Of the key's size, the TPM is asked and refuses it; of another size, it is checked in software only.
    const verify = commands.filter((entry) => entry.startsWith('LoadExternal:') || entry.startsWith('VerifySignature:'));
    if (what === 'another key') assert.equal(verify, ['LoadExternal:0', 'VerifySignature:2db'], `TPM_RC_SIGNATURE (parameter 2) for ${what}: ${commands.join(' ')}`);
    else assert.equal(verify, [], `${what}: ${commands.join(' ')}`);
    assert.not.ok(commands.some((entry) => entry.startsWith('PolicyAuthorize') || entry.startsWith('NV_Read:')), `${what}: ${commands.join(' ')}`);
    assert.ok(commands.includes('PolicyGetDigest:0'), `${what}: the path that explains it ran: ${commands.join(' ')}`);
    assert.is(check('tpm2_getcap', ['-T', tpm.tcti, 'handles-loaded-session']).trim(), '', 'no session left loaded');
    assert.is(check('tpm2_getcap', ['-T', tpm.tcti, 'handles-transient']).trim(), '', 'no object left loaded');
    await reboot(tpm, 'trusted');
  }
}));

test('no key-less write: from a rogue boot, the capped running system and a failed boot\'s shell; the next trusted boot reads the signed set', () => withTpm(async (tpm, dir, state) => {
  // 1. Trusted boot: first install (the key at hand): D1 at version 1.
  bootInto(tpm, 'trusted');
  trustedProvision(tpm, state);
  expectSet(tpm, state, [D1], 'after provision');

  // 2. The pre-cap state of a trusted boot: even there, no key-less write (there is no PCR-bound write approval).
  await keylessWrites(tpm, dir, state, 'trusted boot before the cap');
  expectSet(tpm, state, [D1], 'after the pre-cap attempts');

  // 3. Rogue boot: unseal fails (no approval for its PCRs), and every key-less write fails.
  await reboot(tpm, 'rogue');
  const rogue = unseal(tpm, state);
  assert.is(rogue.status, 1);
  assert.match(rogue.stderr, /^sealroot: tpm: cannot read the trusted set: no read approval matches the current PCR values/m);
  assert.match(rogue.stderr, new RegExp(`^sealroot: tpm: current PCR values: sha256:8=${sha256(ZERO, EVENTS.rogue[8]).toString('hex')} sha256:9=[0-9a-f]{64} sha256:15=0{64}$`, 'm'));
  await keylessWrites(tpm, dir, state, 'rogue boot');
  // The rogue boot caps too (PCR 15 then holds the value a trusted boot's running system has).
  assert.is(unseal(tpm, state, '--cap').status, 1);
  assert.is(tpm2PcrRead(tpm.tcti, 'sha256:15').get('sha256:15'), cappedValue('sha256', ZERO).toString('hex'));
  await keylessWrites(tpm, dir, state, 'rogue boot, capped');

  // 4. Trusted boot, capped: the running system (root, whatever its /etc and /var came from).
  await reboot(tpm, 'trusted');
  const capped = unseal(tpm, state, '--cap');
  assert.is(capped.stdout, `${D1}\n`, capped.stderr);
  assert.match(unseal(tpm, state).stderr, /no read approval matches the current PCR values/);
  await keylessWrites(tpm, dir, state, 'capped trusted boot');

  // 5. A failed trusted boot: capped, then the boot-failed extend (what `sealroot boot` does); the emergency shell.
  await reboot(tpm, 'trusted');
  assert.is(unseal(tpm, state, '--cap').stdout, `${D1}\n`);
  await capPcr({ tcti: tpm.tcti, event: 'boot-failed' });
  await keylessWrites(tpm, dir, state, 'failed boot\'s shell');
  // 5b. A trusted boot killed after the read and before the cap (the PCRs still allow a read): no write either.
  await reboot(tpm, 'trusted');
  assert.is(unseal(tpm, state).stdout, `${D1}\n`);
  await keylessWrites(tpm, dir, state, 'trusted boot killed before the cap');

  // 6. The next trusted boot reads exactly what the key holder signed.
  await reboot(tpm, 'trusted');
  expectSet(tpm, state, [D1], 'after every key-less write');
  const record = toolsReadRecord(tpm, dir, state);
  assert.equal(members(decodeRecord(record)).map((entry) => entry.version), [1]);
  assert.is(record.subarray(slotOffset('sha256', 1)).toString('hex'), '00'.repeat(48), 'slot 1 was never written');
}));

/** The raw record, read with tpm2-tools and the read approval of approvals.json (trusted boot, before the cap). */
function toolsReadRecord(tpm: Swtpm, dir: string, state: string, size = 100): Buffer {
  const entry = (JSON.parse(fs.readFileSync(path.join(state, 'approvals.json'), 'utf8')) as { approvals: { policy: string; signature: string }[] }).approvals[0]!;
  const out = path.join(dir, 'record.bin');
  const read = toolsPolicyCommand(tpm.tcti, dir, { policy: Buffer.from(entry.policy, 'hex'), signature: Buffer.from(entry.signature, 'hex'), publicKey: PUB },
    [['tpm2_policypcr', '-l', 'sha256:8,9,15'], ['tpm2_policycommandcode', 'TPM2_CC_NV_Read']], ['tpm2_nvread', INDEX, '-C', INDEX, '-s', String(size), '-o', out]);
  assert.is(read.status, 0, read.stderr);
  return fs.readFileSync(out);
}

test('no rollback, enforced by the TPM: v2 (by tpm2-tools alone), v3; replays refused by sealroot and by the TPM; v1 retired', () => withTpm(async (tpm, dir, state) => {
  const file = (name: string) => path.join(dir, name);
  const offset0 = slotOffset('sha256', 0);
  const offset1 = slotOffset('sha256', 1);
  bootInto(tpm, 'trusted');
  trustedProvision(tpm, state);
  const v1File = signFile(dir, 1, D1);
  const v2File = signFile(dir, 2, D2);
  const v3File = signFile(dir, 3, D3);
  const v2 = readUpdate(v2File);
  const v1 = readUpdate(v1File);
  // The running system of a trusted boot (capped).
  await reboot(tpm, 'trusted');
  assert.is(unseal(tpm, state, '--cap').stdout, `${D1}\n`);

  // v2 applied with tpm2-tools alone, from the update file: tpm2_policynv + tpm2_policycphash + tpm2_policyauthorize + tpm2_nvwrite.
  const toolsUpdate = (update: TrustUpdate, slot: number, version: number, data: Buffer): RunResult => {
    const write = update.writes.find((entry) => entry.slots === 2 && entry.slot === slot)!;
    const offset = slotOffset('sha256', slot);
    const compare = toolsCompareSession(tpm.tcti, dir, update);
    fs.writeFileSync(file('operand.bin'), versionBytes(version));
    fs.writeFileSync(file('header.bin'), encodeHeader('sha256', 2));
    const layout = toolsCompareSession(tpm.tcti, dir, update, 'layout.ctx');
    fs.writeFileSync(file('slot.bin'), data);
    check('tpm2_nvwrite', ['-T', tpm.tcti, INDEX, '-C', INDEX, '-i', file('slot.bin'), '--offset', String(offset), '--cphash', file('write.cphash')]);
    try {
      return toolsPolicyCommand(tpm.tcti, dir, { policy: write.policy, signature: write.signature, publicKey: PUB }, [
        ['tpm2_policynv', '-i', file('header.bin'), '--offset', '0', '-C', INDEX, '-P', `session:${layout}`, INDEX, 'eq'],
        ['tpm2_policynv', '-i', file('operand.bin'), '--offset', String(offset), '-C', INDEX, '-P', `session:${compare}`, INDEX, 'ult'],
        ['tpm2_policycphash', '--cphash-input', file('write.cphash')],
      ], ['tpm2_nvwrite', INDEX, '-C', INDEX, '-i', file('slot.bin'), '--offset', String(offset)]);
    } finally {
      run('tpm2_flushcontext', ['-T', tpm.tcti, compare]);
      run('tpm2_flushcontext', ['-T', tpm.tcti, layout]);
    }
  };
  const byTools = toolsUpdate(v2, 1, 2, encodeSlot(image(2, D2)));
  assert.is(byTools.status, 0, byTools.stderr);
  const again = apply(tpm, v2File);
  assert.is(again.status, 0, again.stderr);
  assert.is(again.stdout, `${v2File}: version 2 (${D2}) is already trusted (slot 1)\n`);
  // v3 replaces the oldest, v1 (slot 0): 2 slots hold the two newest.
  const third = apply(tpm, v3File);
  assert.is(third.stdout, `${v3File}: version 3 (${D3}) applied into slot 0, replacing version 1\n`, third.stderr);
  assert.is(apply(tpm, v3File).stdout, `${v3File}: version 3 (${D3}) is already trusted (slot 0)\n`);

  // Replays through sealroot: v2 again is already there; v1's file (signed, genuine) and another image signed at
  // version 2 are refused by the TPM's comparisons; nothing changes.
  assert.match(apply(tpm, v2File).stdout, /already trusted \(slot 1\)/);
  const replayV1 = apply(tpm, v1File);
  assert.is(replayV1.status, 1);
  assert.is(replayV1.stderr, `sealroot: tpm: cannot apply the trust update (${v1File}): version 1 (${D1}) is not newer than any version in the trusted set: a replayed or older update\n`);
  const otherV2 = signFile(dir, 2, D(4), { name: 'v2-other-image.trust' });
  const replayOther = apply(tpm, otherV2);
  assert.is(replayOther.status, 1);
  assert.match(replayOther.stderr, /version 2 \(sha256:d4d4.*\) is not newer than any version in the trusted set/);
  // Several files in one apply: sorted by version; the refused one stops the run with one line.
  const mixed = apply(tpm, v3File, v1File);
  assert.is(mixed.status, 1);
  assert.match(mixed.stderr, /version 1 .* is not newer/);

  // The decisive check: the exact signed writes of older updates, sent to the TPM directly. PolicyNV refuses them.
  const refusedByPolicyNv = /^PolicyNV: TPM2_PolicyNV: TPM_RC_POLICY \[0x126\]/;
  /** Version 1 or 2's signed write (for a set of 2 slots) into `slot`, exactly as its update file approved it. */
  const replay = (version: 1 | 2, slot: 0 | 1): Promise<string> => {
    const [update, digestText] = version === 1 ? [v1, D1] : [v2, D2];
    const offset = slot === 0 ? offset0 : offset1;
    const data = encodeSlot(image(version, digestText));
    return directWrite(tpm.tcti, { nv: { version, offset, compareWith: update }, cpHash: { data, offset }, approved: signedWrite(update, 2, slot), write: { data, offset } });
  };
  assert.match(await replay(2, 0), refusedByPolicyNv, 'v2 replayed into slot 0 (holding v3)');
  assert.match(await replay(1, 0), refusedByPolicyNv, 'v1 replayed into slot 0 (holding v3)');
  assert.match(await replay(1, 1), refusedByPolicyNv, 'v1 replayed into slot 1 (holding v2)');
  assert.match(await replay(2, 1), refusedByPolicyNv, 'v2 replayed into its own slot (equal is not older)');
  // The same replay with tpm2-tools alone: tpm2_policynv fails with TPM_RC_POLICY.
  const toolsReplay = toolsUpdate(v2, 0, 2, encodeSlot(image(2, D2)));
  assert.is.not(toolsReplay.status, 0);
  assert.match(toolsReplay.stderr, /^tpm2_policynv: .*PolicyNV\(0x126\)/s, toolsReplay.stderr);
  const toolsReplayV1 = toolsUpdate(v1, 1, 1, encodeSlot(image(1, D1)));
  assert.match(toolsReplayV1.stderr, /^tpm2_policynv: .*PolicyNV\(0x126\)/s, toolsReplayV1.stderr);

  // Next trusted boot: D3 then D2, each on a line of its own; v1 is retired (its image is refused from now on).
  await reboot(tpm, 'trusted');
  expectSet(tpm, state, [D3, D2], 'after v2, v3 and the replays');
  const retired = toolsReadRecord(tpm, dir, state);
  assert.equal(decodeRecord(retired).slots.map((entry) => entry?.version), [3, 2]);
  const logged = unseal(tpm, state);
  assert.match(logged.stderr, new RegExp(`trusted set: versions 3 \\(${D3}\\), 2 \\(${D2}\\)`));
}));

test('updates signed by another key, and corrupted update files, change nothing; each refused with one line', () => withTpm(async (tpm, dir, state) => {
  bootInto(tpm, 'trusted');
  trustedProvision(tpm, state);
  const otherKey = path.join(dir, 'other.pem');
  check('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', otherKey]);
  const foreign = signFile(dir, 5, D9, { key: otherKey, name: 'foreign.trust' });
  const foreignResult = apply(tpm, foreign);
  assert.is(foreignResult.status, 1);
  assert.match(foreignResult.stderr, new RegExp(`^sealroot: tpm: cannot apply the trust update \\(${foreign}\\): version 5 \\(${D9}\\) is not signed by the policy key \\(key name in the file: 000b[0-9a-f]{64}, ours: 000b[0-9a-f]{64}\\)\\n$`));
  // The foreign file with the trusted key's name pasted in: the signatures still decide.
  const pasted = path.join(dir, 'pasted.trust');
  fs.writeFileSync(pasted, fs.readFileSync(foreign, 'utf8').replace(/"policyKey": "[0-9a-f]+"/, `"policyKey": "${loadPolicyKey(PUB).name.toString('hex')}"`));
  assert.match(apply(tpm, pasted).stderr, /is not signed by the policy key/);

  const good = signFile(dir, 2, D2);
  const text = fs.readFileSync(good, 'utf8');
  const json = () => JSON.parse(text) as Record<string, any>;
  const flip = (hex: string, at: number) => hex.slice(0, at) + (hex[at] === '0' ? '1' : '0') + hex.slice(at + 1);
  const variants: [string, string | Buffer, number, RegExp][] = [];
  const compareSig = json();
  compareSig.compare.signature = flip(compareSig.compare.signature, 20);
  variants.push(['compare signature flipped', JSON.stringify(compareSig), 1, /is not signed by the policy key/]);
  for (const slot of [0, 1]) {
    const writeSig = json();
    writeSig.writes[slot].signature = flip(writeSig.writes[slot].signature, 40);
    variants.push([`slot ${slot} signature flipped`, JSON.stringify(writeSig), 1, new RegExp(`the write for slot ${slot} of 2 is not the one the policy key signed`)]);
  }
  variants.push(['digest byte flipped', text.replace(D2, `sha256:${flip('d2'.repeat(32), 7)}`), 1, /the write for slot 0 of 2 is not the one the policy key signed/]);
  variants.push(['digest replaced by the attacker\'s', text.replace(D2, D9), 1, /the write for slot 0 of 2 is not the one the policy key signed/]);
  variants.push(['version raised', text.replace('"version": 2', '"version": 7'), 1, /the write for slot 0 of 2 is not the one/]);
  variants.push(['size changed', text.replace(`"size": ${SIZE}`, '"size": 4097'), 1, /the write for slot 0 of 2 is not the one/]);
  variants.push(['truncated JSON', text.slice(0, 300), 1, /not a valid trust update: not JSON/]);
  variants.push(['wrong format', text.replace('sealroot-trust-update/1', 'sealroot-trust-update/9'), 1, /format is not sealroot-trust-update\/1/]);
  variants.push(['the single-digest design\'s approvals file', fs.readFileSync(path.join(state, 'approvals.json')), 1, /format is not sealroot-trust-update\/1/]);
  variants.push(['huge file', Buffer.alloc(300 * 1024, 0x20), 1, /over the limit|at most/]);
  variants.push(['empty file', '', 1, /not JSON/]);
  for (const [what, content, status, message] of variants) {
    const bad = path.join(dir, 'bad.trust');
    fs.writeFileSync(bad, content);
    const result = apply(tpm, bad);
    assert.is(result.status, status, `${what}: ${result.stdout}${result.stderr}`);
    assert.match(result.stderr, message, `${what}: ${result.stderr}`);
    assert.is(result.stderr.split('\n').filter(Boolean).length, 1, `${what}: one line: ${result.stderr}`);
    assert.match(result.stderr, /^sealroot: tpm: cannot apply the trust update/, what);
  }
  // Not a regular file: a FIFO (no writer: a blocking read would hang), a directory, a missing file.
  const fifo = path.join(dir, 'fifo.trust');
  check('mkfifo', [fifo]);
  for (const [what, target] of [['a FIFO', fifo], ['a directory', dir], ['a missing file', path.join(dir, 'none.trust')]] as const) {
    const result = apply(tpm, target);
    assert.is(result.status, 1, `${what}: ${result.stderr}`);
    assert.is(result.stderr.split('\n').filter(Boolean).length, 1, `${what}: ${result.stderr}`);
  }
  await reboot(tpm, 'trusted');
  expectSet(tpm, state, [D1], 'after the foreign and corrupted updates');
  // The genuine file still applies (the refusals above were about the files, not a broken index).
  assert.match(apply(tpm, good).stdout, /version 2 .* applied into slot 1, replacing an empty slot/);
  await reboot(tpm, 'trusted');
  expectSet(tpm, state, [D2, D1], 'after the genuine update');
}));

test('an NV index undefined and redefined by an attacker: foreign attributes refused; an identical unwritten copy is a DoS only', () => withTpm(async (tpm, dir, state) => {
  const policyKey = loadPolicyKey(PUB);
  bootInto(tpm, 'trusted');
  trustedProvision(tpm, state);
  const v2File = signFile(dir, 2, D2);
  const v3File = signFile(dir, 3, D3);
  const v3 = readUpdate(v3File);
  assert.is(apply(tpm, v2File).status, 0);

  // Foreign attributes: authread|authwrite, the attacker writes a well-formed record naming its own digest.
  await reboot(tpm, 'rogue');
  check('tpm2_nvundefine', ['-T', tpm.tcti, '-C', 'o', INDEX]);
  check('tpm2_nvdefine', ['-T', tpm.tcti, '-C', 'o', '-s', '100', '-a', 'authread|authwrite', INDEX]);
  const forged = path.join(dir, 'forged.bin');
  fs.writeFileSync(forged, Buffer.concat([Buffer.from('01010200', 'hex'), encodeSlot(image(9, D9)), Buffer.alloc(48)]));
  check('tpm2_nvwrite', ['-T', tpm.tcti, '-C', INDEX, '-i', forged, INDEX]);
  await reboot(tpm, 'trusted');
  const redefined = unseal(tpm, state);
  assert.not.match(redefined.stdout + redefined.stderr, /d9d9d9d9/);
  assert.is(redefined.status, 1);
  assert.match(redefined.stderr, /^sealroot: tpm: cannot read the trusted set: NV index 0x1000e01 is not trusted: name [0-9a-f]+ is not the name of sealroot's trusted-set index for this policy key \(it has attributes 0x20040004, authPolicy empty, size 100\)$/m, redefined.stderr);
  assert.match(apply(tpm, v3File).stderr, /NV index 0x1000e01 is not trusted: name/);
  assert.match(provision(tpm, path.join(dir, 'state2')).stderr, /NV index 0x1000e01 exists and is not sealroot's for this policy key .* refusing to touch it/);

  // The same public area as sealroot's (attributes and authPolicy copied), unwritten: nobody but the key holder
  // can write it. A replayed update (v3, genuine) is refused by sealroot and, sent directly, by the TPM.
  await reboot(tpm, 'rogue');
  check('tpm2_nvundefine', ['-T', tpm.tcti, '-C', 'o', INDEX]);
  const authPolicy = path.join(dir, 'authpolicy.bin');
  fs.writeFileSync(authPolicy, policyAuthorize(policyKey.name, TRUST_POLICY_REF));
  check('tpm2_nvdefine', ['-T', tpm.tcti, '-C', 'o', '-s', '100', '-a', 'policywrite|policyread', '-L', authPolicy, INDEX]);
  const replay = apply(tpm, v3File);
  assert.is(replay.status, 1);
  assert.match(replay.stderr, /NV index 0x1000e01 was defined but never written/);
  for (const slot of [0, 1]) {
    const offset = slotOffset('sha256', slot);
    const outcome = await directWrite(tpm.tcti, {
      nv: { version: 3, offset, compareWith: v3 }, cpHash: { data: encodeSlot(image(3, D3)), offset }, approved: signedWrite(v3, 2, slot),
      write: { data: encodeSlot(image(3, D3)), offset },
    });
    // PolicyNV on an unwritten index: TPM_RC_NV_UNINITIALIZED; and the Name differs (no WRITTEN bit) from the one signed.
    assert.match(outcome, /^PolicyNV\(header\): .*TPM_RC_NV_UNINITIALIZED/, `v3 replayed into slot ${slot} of the redefined index: ${outcome}`);
    assert.match(await directWrite(tpm.tcti, {
      cpHash: { data: encodeSlot(image(3, D3)), offset }, approved: signedWrite(v3, 2, slot), write: { data: encodeSlot(image(3, D3)), offset },
    }), /^PolicyAuthorize: .*TPM_RC_VALUE/);
  }
  await keylessWrites(tpm, dir, state, 'rogue boot, identical unwritten index');
  await reboot(tpm, 'trusted');
  const unwritten = unseal(tpm, state);
  assert.not.match(unwritten.stdout + unwritten.stderr, /d9d9d9d9/);
  assert.is(unwritten.status, 1);
  assert.match(unwritten.stderr, /NV index 0x1000e01 was defined but never written/);

  // Recovery is the key holder's: a first install again (key at hand), at a version above the retired ones.
  const again = provision(tpm, state, D3, '--version', '3');
  assert.is(again.status, 0, again.stderr);
  expectSet(tpm, state, [D3], 'after the key holder provisioned again');
  assert.match(apply(tpm, v3File).stdout, /version 3 .* is already trusted \(slot 0\)/);
  // Installed at version 3: the empty slot holds floor 2, so the genuine but older v2 and v1 updates are refused,
  // by sealroot and by the TPM (PolicyNV on the empty slot).
  const v2 = readUpdate(v2File);
  const older = apply(tpm, v2File);
  assert.is(older.status, 1);
  assert.match(older.stderr, /version 2 .* is not newer than any version in the trusted set/);
  assert.match(apply(tpm, signFile(dir, 1, D1)).stderr, /version 1 .* is not newer than any version in the trusted set/);
  assert.match(await directWrite(tpm.tcti, {
    nv: { version: 2, offset: slotOffset('sha256', 1), compareWith: v2 }, cpHash: { data: encodeSlot(image(2, D2)), offset: slotOffset('sha256', 1) },
    approved: signedWrite(v2, 2, 1), write: { data: encodeSlot(image(2, D2)), offset: slotOffset('sha256', 1) },
  }), /^PolicyNV: TPM2_PolicyNV: TPM_RC_POLICY \[0x126\]/);
  const empty = toolsReadRecord(tpm, dir, state);
  assert.is(empty.subarray(slotOffset('sha256', 1)).toString('hex'), `${'00'.repeat(7)}02${'00'.repeat(40)}`, 'slot 1: empty, floor 2');
  // A newer update fills the empty slot ("an empty slot", not "version 2").
  assert.match(apply(tpm, signFile(dir, 4, D(4))).stdout, /version 4 .* applied into slot 1, replacing an empty slot/);
  await reboot(tpm, 'trusted');
  expectSet(tpm, state, [D(4), D3], 'after v4');
}));

test('errors: no TPM, unknown or unallocated bank, wrong PCRs, wrong key, corrupted state, DA lockout', () => withTpm(async (tpm, dir, state) => {
  // No TPM: nothing listens, or no device node.
  const closed = await startSwtpm();
  const closedTcti = closed.tcti;
  await closed.stop();
  const refused = sealroot('unseal', '--tpm', closedTcti, '--pcrs', PCRS, '--state', state, '--policy-key', PUB);
  assert.is(refused.status, 1);
  assert.is(refused.stderr, `sealroot: tpm: cannot read the trusted set: no TPM at ${closedTcti}: connection refused (is swtpm running?)\n`);
  // readTrustAndCap: both steps fail; the read's error is thrown, the cap's is logged.
  const logged: string[] = [];
  const log = { info: () => {}, notice: () => {}, warn: () => {}, error: (message: string) => logged.push(message) };
  try {
    await readTrustAndCap({ tcti: closedTcti, pcrs: PCRS, stateDir: state, policyKeyPath: PUB, log });
    assert.unreachable('read without a TPM');
  } catch (error) {
    assert.instance(error, StepError);
    assert.match((error as Error).message, /^tpm: cannot read the trusted set: no TPM at/);
  }
  assert.equal(logged.map((line) => line.replace(/port=\d+/, 'port=P')), ['tpm: cannot cap PCR 15: no TPM at swtpm:host=127.0.0.1,port=P: connection refused (is swtpm running?)']);
  const noDevice = sealroot('unseal', '--tpm', 'device:/dev/sealroot-no-such-tpm', '--pcrs', PCRS, '--state', state, '--policy-key', PUB);
  assert.is(noDevice.status, 1);
  assert.match(noDevice.stderr, /^sealroot: tpm: cannot read the trusted set: no TPM: \/dev\/sealroot-no-such-tpm does not exist/);
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
  assert.match(otherPub.stderr, /is not trusted: name [0-9a-f]+ is not the name of sealroot's trusted-set index for this policy key/);
  const notPem = sealroot('unseal', '--tpm', tpm.tcti, '--pcrs', PCRS, '--state', state, '--policy-key', path.join(dir, 'missing.pem'));
  assert.match(notPem.stderr, /cannot read the policy key .*missing\.pem: ENOENT/);

  // Corrupted state files: garbage, a flipped signature, a foreign signature put first, a missing file.
  const file = path.join(state, 'approvals.json');
  const good = fs.readFileSync(file, 'utf8');
  fs.writeFileSync(file, good.slice(0, 100));
  const garbage = unseal(tpm, state);
  assert.is(garbage.status, 1);
  assert.match(garbage.stderr, new RegExp(`^sealroot: tpm: cannot read the trusted set \\(${file}\\): corrupted state file: not JSON`));
  const parsed = JSON.parse(good) as { approvals: { purpose: string; signature: string; policy: string }[] };
  const flipped = structuredClone(parsed);
  const read = flipped.approvals.find((a) => a.purpose === 'read')!;
  read.signature = (read.signature[0] === '0' ? '1' : '0') + read.signature.slice(1);
  fs.writeFileSync(file, JSON.stringify(flipped));
  const badSignature = unseal(tpm, state);
  assert.is(badSignature.status, 1);
  assert.match(badSignature.stderr, /the read approval for policy [0-9a-f]{64} is not signed by the policy key/);
  const foreign = structuredClone(parsed);
  const forged = { ...foreign.approvals.find((a) => a.purpose === 'read')!, signature: sign('sha256', Buffer.concat([Buffer.from(read.policy, 'hex'), TRUST_POLICY_REF]), fs.readFileSync(otherKey)).toString('hex') };
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
  // An update applies in lockout too (policy sessions only, nothing DA-protected).
  const lockoutApply = apply(tpm, signFile(dir, 2, D2));
  assert.is(lockoutApply.status, 0, lockoutApply.stderr);
  assert.is(unseal(tpm, state).stdout, `${D2}\n${D1}\n`);

  // An owner hierarchy with a password: defining the index needs --owner-auth; a wrong one is named by the TPM.
  check('tpm2_changeauth', ['-T', tpm.tcti, '-c', 'o', 'owner-secret']);
  const ownerArgs = ['provision', '--tpm', tpm.tcti, '--signing-key', KEY, '--digest', D1, '--size', String(SIZE), '--pcrs', PCRS, '--state', path.join(dir, 'state9'), '--nv-index', '0x01000e09'];
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
  assert.match(unallocated.stderr, /^sealroot: tpm: cannot read the trusted set: PCR bank sha384 is not allocated on this TPM \(allocated: sha1, sha256\)$/m);
  const pcrRead = sealroot('pcr', 'read', '--tpm', tpm.tcti, 'sha384:8');
  assert.is(pcrRead.status, 1);
  assert.match(pcrRead.stderr, /no value for sha384:8 \(bank not allocated\?\)/);
}));

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

test('A/B with an ECDSA P-256 key, SHA-512 digests, --slots 3, another NV index and another cap PCR', () => withTpm(async (tpm, dir, state) => {
  const E = (n: number) => `sha512:${`5${n}`.repeat(64)}`;
  const options = ['--nv-index', '0x01000e07', '--cap-pcr', '14', '--state', state];
  const ecUnseal = (...extra: string[]) => sealroot('unseal', '--tpm', tpm.tcti, '--pcrs', PCRS, '--policy-key', EC_PUB, ...options, ...extra);
  const ecSign = (version: number, digest: string, extra: string[] = []) => signFile(dir, version, digest, { key: EC_KEY, extra: ['--nv-index', '0x01000e07', ...extra] });
  const ecApply = (...files: string[]) => sealroot('trust', 'apply', '--tpm', tpm.tcti, '--policy-key', EC_PUB, '--nv-index', '0x01000e07', ...files);
  bootInto(tpm, 'trusted');
  // tpm2-tools names the EC key as sealroot does.
  check('tpm2_loadexternal', ['-T', tpm.tcti, '-C', 'o', '-G', 'ecc', '-u', EC_PUB, '-c', path.join(dir, 'ec.ctx'), '-n', path.join(dir, 'ec.name')]);
  check('tpm2_flushcontext', ['-T', tpm.tcti, '-t']);
  assert.is(fs.readFileSync(path.join(dir, 'ec.name')).toString('hex'), loadPolicyKey(EC_PUB).name.toString('hex'));
  const provisioned = sealroot('provision', '--tpm', tpm.tcti, '--signing-key', EC_KEY, '--digest', E(1), '--size', String(SIZE), '--slots', '3', '--pcrs', PCRS, ...options);
  assert.is(provisioned.status, 0, provisioned.stderr);
  assert.match(provisioned.stdout, new RegExp(`^provisioned the trusted set \\(version 1 \\(${E(1)}\\); 3 slots\\) in NV index 0x01000e07`));
  assert.match(check('tpm2_nvreadpublic', ['-T', tpm.tcti, '0x01000e07']), /size: 244/);
  // The RSA key is not the key of this index.
  assert.match(sealroot('unseal', '--tpm', tpm.tcti, '--pcrs', PCRS, '--policy-key', PUB, ...options).stderr, /is not trusted/);
  const read = ecUnseal('--cap');
  assert.is(read.stdout, `${E(1)}\n`, read.stderr);
  assert.is(tpm2PcrRead(tpm.tcti, 'sha256:14').get('sha256:14'), cappedValue('sha256', ZERO).toString('hex'));
  assert.is(tpm2PcrRead(tpm.tcti, 'sha256:15').get('sha256:15'), '00'.repeat(32));
  assert.is(ecUnseal().status, 1);

  // The capped running system applies v2, v3 (empty slots), then v4 replaces v1: three slots hold the three newest.
  const files = [2, 3, 4].map((version) => ecSign(version, E(version)));
  const applied = ecApply(...files.reverse());
  assert.is(applied.status, 0, applied.stderr);
  assert.is(applied.stdout.split('\n').filter(Boolean).map((line) => line.replace(/^.*: version/, 'version').replace(/ \(sha512:[0-9a-f]+\)/, '')).join('\n'),
    'version 2 applied into slot 1, replacing an empty slot\nversion 3 applied into slot 2, replacing an empty slot\nversion 4 applied into slot 0, replacing version 1');
  // A SHA-256 update does not fit a SHA-512 set; a file signed only for 2-slot sets does not fit a 3-slot machine.
  const sha256Update = ecApply(ecSign(5, D(5)));
  assert.is(sha256Update.status, 1);
  // 244 bytes is also the size of 5 SHA-256 slots: the header comparison (in the TPM) tells them apart.
  assert.match(sha256Update.stderr, /NV index 0x1000e07 \(244 bytes\) does not hold a format 1 set of 5 sha256 slots/, sha256Update.stderr);
  const twoSlotsOnly = ecApply(signFile(dir, 5, E(5), { key: EC_KEY, name: 'v5-2slots.trust', extra: ['--nv-index', '0x01000e07', '--slots', '2'] }));
  assert.is(twoSlotsOnly.status, 1);
  assert.match(twoSlotsOnly.stderr, /version 5 was not signed for a set of 3 slots \(signed for 2\)/);
  // The RSA-signed update of the same image: not this index's key.
  assert.match(ecApply(signFile(dir, 5, E(5), { name: 'v5-rsa.trust', extra: ['--nv-index', '0x01000e07'] })).stderr, /is not signed by the policy key/);

  await reboot(tpm, 'trusted');
  const next = ecUnseal();
  assert.is(next.stdout, `${E(4)}\n${E(3)}\n${E(2)}\n`, next.stderr);
  assert.match(next.stderr, /trusted set: versions 4 \(sha512:/);
}));

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

test('the record format is checked: a later format written by the key holder is not read, and format-1 updates do not apply to it', () => withTpm(async (tpm, dir, state) => {
  const other = 0x01000e05;
  bootInto(tpm, 'trusted');
  trustedProvision(tpm, state);
  // The key holder (a future sealroot) defines another index and writes a format-2 record with the one-time
  // PolicySigned authorization provision uses.
  const signer = loadSigner(KEY);
  const record = encodeRecord({ algorithm: 'sha256', slots: [image(1, D1), undefined] });
  record[0] = 2;
  const client = await Tpm.open(tpm.tcti);
  try {
    await client.nvDefineSpace(trustIndexPublic(other, signer.policyKey, record.length, false), Buffer.alloc(0));
    const name = trustIndexName(other, signer.policyKey, record.length, false);
    const session = await client.startPolicySession();
    const cpHash = writeCpHash(name, record, 0);
    const key = await client.loadExternal(signer.policyKey.publicArea);
    await client.policySigned(key.handle, session.handle, session.nonceTpm, cpHash, PROVISION_REF, signer.sign(policySignedMessage(session.nonceTpm, 0, cpHash, PROVISION_REF)));
    await client.flush(key.handle);
    const approved = policySigned(ZERO_POLICY, signer.policyKey.name, PROVISION_REF);
    const ticket = await approvalTicket(client, signer.policyKey, approved, TRUST_POLICY_REF, signer.signRaw(Buffer.concat([approved, TRUST_POLICY_REF])));
    await client.policyAuthorize(session.handle, approved, TRUST_POLICY_REF, signer.policyKey.name, ticket);
    await client.nvWrite(other, record, session.handle);
    await client.flush(session.handle);
  } finally {
    await client.close();
  }
  // The read approval is the boot chain's, not the index's: the same state directory reads the other index.
  const read = unseal(tpm, state, '--nv-index', '0x01000e05');
  assert.is(read.status, 1);
  assert.is(read.stdout, '');
  assert.match(read.stderr, /^sealroot: tpm: cannot read the trusted set: NV index 0x1000e05: record format 2 \(this sealroot reads format 1\)$/m);
  // A format-1 update for that index: refused by its header comparison (in the TPM), before any write.
  const update = signFile(dir, 2, D2, { extra: ['--nv-index', '0x01000e05'] });
  const applied = apply(tpm, '--nv-index', '0x01000e05', update);
  assert.is(applied.status, 1);
  assert.match(applied.stderr, /NV index 0x1000e05 \(100 bytes\) does not hold a format 1 set of 2 sha256 slots/);
  // The default index is untouched and still read.
  expectSet(tpm, state, [D1], 'the format-1 index');
}));

test('provisioning from the host with predicted PCR values: the next boot reads the set; approve signs the same read approval', () => withTpm(async (tpm, dir, state) => {
  // The host's view of the TPM: PCRs at their reset values, nothing like the guest's next boot.
  const provisioned = provision(tpm, state, D1, '--pcr-value', `8=${TRUSTED_VALUES[8].toString('hex')}`, '--pcr-value', `sha256:9=${TRUSTED_VALUES[9].toString('hex')}`);
  assert.is(provisioned.status, 0, provisioned.stderr);
  assert.match(provisioned.stderr, /defined NV index 0x1000e01 \(100 bytes: 2 sha256 slots/);
  assert.is(unseal(tpm, state).status, 1, 'the host state must not read the set');
  // The host signs and applies the second image's update too (no key needed for the apply).
  assert.is(apply(tpm, signFile(dir, 2, D2)).status, 0);
  await reboot(tpm, 'trusted');
  expectSet(tpm, state, [D2, D1], 'the next boot');
  // approve without a TPM: every value given; the same read approval as provision signed.
  const approved = sealroot('approve', '--signing-key', KEY, '--pcrs', PCRS, '--state', path.join(dir, 'approved'),
    '--pcr-value', `8=${TRUSTED_VALUES[8].toString('hex')}`, '--pcr-value', `9=${TRUSTED_VALUES[9].toString('hex')}`);
  assert.is(approved.status, 0, approved.stderr);
  const policies = (file: string) => (JSON.parse(fs.readFileSync(file, 'utf8')) as { approvals: { policy: string; purpose: string }[] }).approvals.map((a) => `${a.purpose} ${a.policy}`).sort();
  assert.equal(policies(path.join(dir, 'approved/approvals.json')), policies(path.join(state, 'approvals.json')));
  assert.equal(policies(path.join(state, 'approvals.json')).map((entry) => entry.split(' ')[0]), ['read']);
  // A second provision of a written index is refused: later images go through signed updates.
  const second = provision(tpm, state, D3, '--version', '3');
  assert.is(second.status, 1);
  assert.match(second.stderr, /NV index 0x1000e01 is already provisioned: trust a new image with a signed update/, second.stderr);
}));

test.run();
