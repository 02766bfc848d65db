// Pure parts of the TPM client: PCR selections and values, TCTI strings, policies and approvals, the state file.
import { createHash, generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { addApprovals, MAX_APPROVALS_BYTES, parseApprovals, readApprovals, serializeApprovals } from '../../src/tpm2/approvals.ts';
import { TPM_ALG, TPM_CC } from '../../src/tpm2/constants.ts';
import { parseCapPcr, parseNvIndex, parsePcrValues } from '../../src/tpm2/options.ts';
import { formatPcrSelection, marshalPcrSelection, parsePcrSelection, selectionOrder, withPcr } from '../../src/tpm2/pcr-selection.ts';
import { approvalDigest, commandParametersHash, policyAuthorize, policyCommandCode, policyPcr, policySigned, policySignedDigest, ZERO_POLICY } from '../../src/tpm2/policy.ts';
import { loadPolicyKey, loadSigner, policyKeyFromObject, signerFromObject, verifyRaw } from '../../src/tpm2/policy-key.ts';
import { BOOT_FAILED_EVENT, cappedValue, CAP_EVENT, extendCap, makeReadApproval, pcrCommandPolicy, PolicyError } from '../../src/tpm2/approved-policy.ts';
import { Tpm } from '../../src/tpm2/client.ts';
import { Writer } from '../../src/tpm2/marshal.ts';
import { PROVISION_REF, TRUST_POLICY_REF as POLICY_REF } from '../../src/trust/policies.ts';
import { parseTcti } from '../../src/tpm2/transport.ts';

const sha256 = (...parts: Buffer[]) => { const h = createHash('sha256'); for (const p of parts) h.update(p); return h.digest(); };
const KEYS = path.resolve(import.meta.dirname, '../../keys');
const KEY = path.join(KEYS, 'test-policy-key.pem');

test('PCR selections in tpm2-tools syntax', () => {
  assert.equal(parsePcrSelection('sha256:7,0,2'), [{ bank: 'sha256', pcrs: [0, 2, 7] }]);
  assert.equal(parsePcrSelection('sha256:0,7+sha1:4'), [{ bank: 'sha256', pcrs: [0, 7] }, { bank: 'sha1', pcrs: [4] }]);
  assert.is(formatPcrSelection(withPcr(parsePcrSelection('sha256:9,8'), 15)), 'sha256:8,9,15');
  assert.equal(selectionOrder(parsePcrSelection('sha256:8+sha1:1,0')), [{ bank: 'sha256', pcr: 8 }, { bank: 'sha1', pcr: 0 }, { bank: 'sha1', pcr: 1 }]);
  assert.is(marshalPcrSelection(parsePcrSelection('sha256:8,9,15')).finish().toString('hex'), '00000001000b03008300');
  assert.throws(() => parsePcrSelection('sha999:1'), /unknown PCR bank 'sha999'/);
  assert.throws(() => parsePcrSelection('sha256:24'), /out of range/);
  assert.throws(() => parsePcrSelection('sha256:'), /not a PCR selection/);
  assert.throws(() => parsePcrSelection('sha256:1+sha256:2'), /selected twice/);
  assert.throws(() => parsePcrSelection(''), /empty/);
});

test('--pcr-value, --nv-index, --cap-pcr', () => {
  const selection = withPcr(parsePcrSelection('sha256:8'), 15);
  const values = parsePcrValues([`8=${'ab'.repeat(32)}`, `sha256:15=0x${'00'.repeat(32)}`], selection);
  assert.is(values.get('sha256:8')!.toString('hex'), 'ab'.repeat(32));
  assert.is(values.get('sha256:15')!.length, 32);
  assert.throws(() => parsePcrValues([`8=${'ab'.repeat(20)}`], selection), /20 bytes match no bank/);
  assert.throws(() => parsePcrValues([`sha1:8=${'ab'.repeat(32)}`], selection), /sha1 value has 20 bytes/);
  assert.throws(() => parsePcrValues(['8=xyz'], selection), /bad --pcr-value/);
  assert.is(parseNvIndex('0x01000e01'), 0x01000e01);
  assert.throws(() => parseNvIndex('0x81000001'), /NV index handle/);
  assert.is(parseCapPcr('15'), 15);
  assert.throws(() => parseCapPcr('16'), /resettable/);
  assert.throws(() => parseCapPcr('23'), /resettable/);
});

test('TCTI strings as tpm2-tools takes them', () => {
  assert.equal(parseTcti('device:/dev/tpmrm0'), { kind: 'device', path: '/dev/tpmrm0' });
  assert.equal(parseTcti('device'), { kind: 'device', path: '/dev/tpmrm0' });
  assert.equal(parseTcti('swtpm:host=127.0.0.1,port=2400'), { kind: 'swtpm', host: '127.0.0.1', port: 2400 });
  assert.equal(parseTcti('swtpm'), { kind: 'swtpm', host: 'localhost', port: 2321 });
  assert.equal(parseTcti('mssim:port=2500'), { kind: 'mssim', host: 'localhost', port: 2500 });
  assert.throws(() => parseTcti('device:tpm0'), /absolute path/);
  assert.throws(() => parseTcti('swtpm:host=x,prt=1'), /unknown swtpm TCTI option 'prt'/);
  assert.throws(() => parseTcti('swtpm:port=70000'), /bad port/);
  assert.throws(() => parseTcti('tabrmd:'), /unknown TCTI 'tabrmd'/);
});

test('policy digests follow Part 3: PolicyPCR, PolicyCommandCode, PolicyAuthorize (independent formulas)', () => {
  const selection = parsePcrSelection('sha256:8');
  const value = sha256(Buffer.from('v'));
  const expectedPcr = sha256(ZERO_POLICY, Buffer.from('0000017f', 'hex'), Buffer.from('00000001000b03000100', 'hex'), sha256(value));
  assert.equal(policyPcr(ZERO_POLICY, selection, [value]), expectedPcr);
  assert.equal(policyCommandCode(expectedPcr, TPM_CC.NV_Read), sha256(expectedPcr, Buffer.from('0000016c0000014e', 'hex')));
  assert.equal(pcrCommandPolicy(selection, new Map([['sha256:8', value]]), TPM_CC.NV_Read), policyCommandCode(expectedPcr, TPM_CC.NV_Read));
  const name = Buffer.concat([Buffer.from('000b', 'hex'), sha256(Buffer.from('key'))]);
  assert.equal(policyAuthorize(name, POLICY_REF), sha256(sha256(ZERO_POLICY, Buffer.from('0000016a', 'hex'), name), POLICY_REF));
  assert.throws(() => pcrCommandPolicy(selection, new Map(), TPM_CC.NV_Read), /no value for PCR sha256:8/);
});

test('PolicySigned and cpHash for the one-time provisioning write (Part 3 §23.3, Part 1 §18.7)', () => {
  const nonce = Buffer.alloc(16, 0x5a);
  const cpHash = commandParametersHash(TPM_CC.NV_Write, [Buffer.from('000b01', 'hex'), Buffer.from('000b02', 'hex')], Buffer.from('0001ff0000', 'hex'));
  assert.equal(cpHash, sha256(Buffer.from('00000137000b01000b020001ff0000', 'hex')));
  assert.equal(policySignedDigest(nonce, 0, cpHash, PROVISION_REF), sha256(nonce, Buffer.alloc(4), cpHash, PROVISION_REF));
  const name = Buffer.from('000b' + '11'.repeat(32), 'hex');
  assert.equal(policySigned(ZERO_POLICY, name, PROVISION_REF), sha256(sha256(ZERO_POLICY, Buffer.from('00000160', 'hex'), name), PROVISION_REF));
});

test('the cap: capped value is one extend with the cap event; the read approval binds NV_Read to the pre-cap values', () => {
  assert.equal(cappedValue('sha256', Buffer.alloc(32)), sha256(Buffer.alloc(32), sha256(CAP_EVENT)));
  const signer = loadSigner(KEY);
  const selection = parsePcrSelection('sha256:8');
  const values = new Map([['sha256:8', Buffer.alloc(32, 1)], ['sha256:15', Buffer.alloc(32)]]);
  const read = makeReadApproval(signer, selection, 15, values, POLICY_REF);
  const full = withPcr(selection, 15);
  assert.is(read.purpose, 'read');
  assert.equal(read.policy, pcrCommandPolicy(full, values, TPM_CC.NV_Read));
  const capped = new Map<string, Buffer>(values).set('sha256:15', cappedValue('sha256', Buffer.alloc(32)));
  assert.not.equal(makeReadApproval(signer, selection, 15, capped, POLICY_REF).policy, read.policy);
  assert.ok(verifyRaw(signer.policyKey, Buffer.concat([read.policy, POLICY_REF]), read.signature));
  // Signed for the trusted-set policyRef only: the same policy under the single-digest design's ref does not verify.
  assert.not.ok(verifyRaw(signer.policyKey, Buffer.concat([read.policy, Buffer.from('sealroot/nv-digest/v1')]), read.signature));
  assert.equal(approvalDigest(read.policy, POLICY_REF), sha256(read.policy, POLICY_REF));
  assert.throws(() => makeReadApproval(signer, selection, 15, new Map([['sha256:8', Buffer.alloc(32)]]), POLICY_REF), /no value for PCR sha256:15/);
});

test('policy keys: RSA 2048-4096, ECDSA P-256/P-384; names as tpm2_loadexternal computes them', () => {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 3072 });
  const key = policyKeyFromObject(publicKey);
  assert.is(key.publicArea.readUInt32BE(4), 0x00060040);
  assert.is(key.name.length, 34);
  // Names printed by tpm2_loadexternal -C o -G rsa|ecc -u keys/test-policy-key*.pub.pem -n (tpm2-tools 5.4, swtpm 0.7.1).
  assert.is(loadPolicyKey(path.join(KEYS, 'test-policy-key.pub.pem')).name.toString('hex'), '000b66b608030a1e3ca8690b1b1a1dfe132ef2df7d593cc5211624043943ef29c9b1');
  assert.is(loadPolicyKey(path.join(KEYS, 'test-policy-key-ec.pub.pem')).name.toString('hex'), '000b4bccd96c0b6529a8537ace8b61902dde84e24b491e767ba9eae4a959bb988161');
  const ec = signerFromObject(generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey);
  const raw = ec.signRaw(Buffer.from('m'));
  assert.is(raw.length, 96);
  assert.ok(verifyRaw(ec.policyKey, Buffer.from('m'), raw));
  const marshalled = ec.sign(Buffer.from('m'));
  assert.is(marshalled.subarray(0, 4).toString('hex'), '0018000b');
  assert.is(marshalled.readUInt16BE(4), 48);
  assert.throws(() => policyKeyFromObject(generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey), /curve/);
  assert.throws(() => policyKeyFromObject(generateKeyPairSync('ed25519').publicKey), /supports RSA and EC/);
  assert.throws(() => policyKeyFromObject(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey), /1024 bits/);
});

test('the approvals file: round trip, strict parsing, exact duplicates dropped, other signatures kept', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-approvals-'));
  try {
    const signer = loadSigner(KEY);
    const values = new Map([['sha256:8', Buffer.alloc(32)], ['sha256:15', Buffer.alloc(32)]]);
    const approvals = [makeReadApproval(signer, parsePcrSelection('sha256:8'), 15, values, POLICY_REF), makeReadApproval(signer, parsePcrSelection('sha256:8'), 15, new Map(values).set('sha256:8', Buffer.alloc(32, 1)), POLICY_REF)];
    const text = serializeApprovals(approvals);
    assert.equal(parseApprovals(text, 'f').map((a) => a.policy), approvals.map((a) => a.policy));
    addApprovals(dir, approvals);
    addApprovals(dir, approvals);
    assert.is(readApprovals(dir).length, 2);
    addApprovals(dir, [{ ...approvals[0]!, signature: Buffer.alloc(256, 7) }]);
    assert.is(readApprovals(dir).length, 3);
    assert.throws(() => parseApprovals('{', 'f'), /corrupted state file: not JSON/);
    assert.throws(() => parseApprovals('{"format":"other","approvals":[]}', 'f'), /not a sealroot-tpm-approvals\/2 file/);
    // The single-digest design's file (format 1, with PCR-bound write approvals) is not read at all.
    assert.throws(() => parseApprovals(text.replace('sealroot-tpm-approvals/2', 'sealroot-tpm-approvals/1'), 'f'), /not a sealroot-tpm-approvals\/2 file/);
    const record = JSON.parse(text) as { approvals: Record<string, unknown>[] };
    record.approvals[0]!.purpose = 'delete';
    assert.throws(() => parseApprovals(JSON.stringify(record), 'f'), /approval 0: bad purpose/);
    record.approvals[0]!.purpose = 'write';
    assert.throws(() => parseApprovals(JSON.stringify(record), 'f'), /approval 0: bad purpose/);
    record.approvals[0]!.purpose = 'read';
    record.approvals[0]!.policy = 'ab';
    assert.throws(() => parseApprovals(JSON.stringify(record), 'f'), /approval 0: bad policy/);
    assert.throws(() => readApprovals(path.join(dir, 'none')), /no approvals: the state directory was not provisioned/);
    fs.writeFileSync(path.join(dir, 'approvals.json'), Buffer.alloc(MAX_APPROVALS_BYTES + 1, 0x20));
    assert.throws(() => readApprovals(dir), /unusable state file: is 1048577 bytes, over the limit of 1048576/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** A Tpm whose transport answers every command with PCR_Event's response holding `entries` (no TPM behind it). */
async function pcrEventTpm(entries: () => [number, Buffer][]): Promise<{ tpm: Tpm; sent: Buffer[] }> {
  const tpm = await Tpm.open('device:/dev/null');
  const sent: Buffer[] = [];
  tpm.transport.transmit = async (frame: Buffer) => {
    sent.push(frame);
    const list = new Writer().u32(entries().length);
    for (const [alg, digest] of entries()) list.u16(alg).bytes(digest);
    const parameters = list.finish();
    const rest = new Writer().u32(parameters.length).bytes(parameters).u16(0).u8(1).u16(0).finish();
    return new Writer().u16(0x8002).u32(10 + rest.length).u32(0).bytes(rest).finish();
  };
  return { tpm, sent };
}

test('extendCap: one TPM2_PCR_Event; the TPM\'s digest for each bank sealroot can hash must be the event\'s (what cappedValue assumes)', async () => {
  const algs = [['sha1', TPM_ALG.SHA1], ['sha256', TPM_ALG.SHA256], ['sha384', TPM_ALG.SHA384], ['sha512', TPM_ALG.SHA512]] as const;
  const honest = (event: Buffer): [number, Buffer][] => [...algs.map(([name, alg]): [number, Buffer] => [alg, createHash(name).update(event).digest()]), [0x0027, Buffer.alloc(32, 7)]];
  let answer = honest(CAP_EVENT);
  const { tpm, sent } = await pcrEventTpm(() => answer);
  try {
    assert.equal(await extendCap(tpm, 15), ['sha1', 'sha256', 'sha384', 'sha512', '0x27']);
    assert.equal(sent.map((frame) => frame.readUInt32BE(6)), [TPM_CC.PCR_Event], 'one command, no GetCapability');
    assert.is(sent[0]!.readUInt32BE(10), 15);
    assert.equal(sent[0]!.subarray(29), CAP_EVENT);
    // The extend H(old || H(event)) in each bank is cappedValue's.
    const old = Buffer.alloc(32, 9);
    assert.equal(cappedValue('sha256', old), sha256(old, answer[1]![1]));

    answer = honest(BOOT_FAILED_EVENT);
    assert.equal(await extendCap(tpm, 15, BOOT_FAILED_EVENT), ['sha1', 'sha256', 'sha384', 'sha512', '0x27']);
    assert.equal(sent[1]!.subarray(29), BOOT_FAILED_EVENT);
    // The cap event's digests answered for the boot-failed event, and one wrong bank among right ones.
    answer = honest(CAP_EVENT);
    const swapped = await extendCap(tpm, 15, BOOT_FAILED_EVENT).then(() => undefined, (error: unknown) => error);
    assert.instance(swapped, PolicyError);
    assert.match((swapped as Error).message, /^PCR 15, bank sha1: TPM2_PCR_Event hashed the event to 86a01dfc[0-9a-f]{32}, not [0-9a-f]{40}$/);
    answer = honest(CAP_EVENT).map(([alg, digest]) => [alg, alg === TPM_ALG.SHA384 ? Buffer.alloc(48) : digest]);
    const wrong = await extendCap(tpm, 15).then(() => undefined, (error: unknown) => error);
    assert.instance(wrong, PolicyError);
    assert.match((wrong as Error).message, /^PCR 15, bank sha384: TPM2_PCR_Event hashed the event to 0{96}, not [0-9a-f]{96}$/);
  } finally {
    await tpm.close();
  }
});

test.run();
