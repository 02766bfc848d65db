// Signed trust update files (src/trust/update-file.ts): policies recomputed from independent formulas (TPM 2.0
// Part 3 §23.9 PolicyNV, §23.13 PolicyCpHash, Part 1 §18.7 cpHash), strict and bounded parsing, and the software
// checks that refuse another key, a flipped byte, a policy moved to another slot or slot count.
import { createHash, generateKeyPairSync } from 'node:crypto';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadSigner, signerFromObject } from '../../src/tpm2/policy-key.ts';
import { TPMA_NV } from '../../src/tpm2/constants.ts';
import { nvName } from '../../src/tpm2/structures.ts';
import { comparePolicy, TRUST_NV_ATTRIBUTES, trustIndexName, trustIndexPublic, updatePolicy } from '../../src/trust/policies.ts';
import { type TrustedImage } from '../../src/trust/record.ts';
import {
  checkSigner, checkUpdate, MAX_UPDATE_BYTES, parseUpdate, serializeUpdate, signUpdate, UPDATE_FORMAT, UpdateFileError,
} from '../../src/trust/update-file.ts';

const sha256 = (...parts: Buffer[]) => { const h = createHash('sha256'); for (const p of parts) h.update(p); return h.digest(); };
const hex = (text: string) => Buffer.from(text, 'hex');
const KEYS = path.resolve(import.meta.dirname, '../../keys');
const SIGNER = loadSigner(path.join(KEYS, 'test-policy-key.pem'));
const EC_SIGNER = loadSigner(path.join(KEYS, 'test-policy-key-ec.pem'));
const OTHER = signerFromObject(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
const INDEX = 0x01000e01;
const IMAGE: TrustedImage = { version: 3, size: 0x12345, digest: { algorithm: 'sha256', bytes: Buffer.alloc(32, 0xd3) } };

test('the index: policy read/write only, no WRITEALL, no owner/auth access; its Name changes with size and WRITTEN', () => {
  assert.is(TRUST_NV_ATTRIBUTES, 0x00080008);
  assert.is(TRUST_NV_ATTRIBUTES & TPMA_NV.WRITEALL, 0);
  const pub = trustIndexPublic(INDEX, SIGNER.policyKey, 100, true);
  assert.is(pub.attributes, 0x20080008);
  // PolicyAuthorize(K, "sealroot/trusted-set/v1"), Part 3 §23.16.
  assert.equal(pub.authPolicy, sha256(sha256(Buffer.alloc(32), hex('0000016a'), SIGNER.policyKey.name), Buffer.from('sealroot/trusted-set/v1')));
  assert.equal(trustIndexName(INDEX, SIGNER.policyKey, 100, true), nvName(pub));
  const names = new Set([
    trustIndexName(INDEX, SIGNER.policyKey, 100, true), trustIndexName(INDEX, SIGNER.policyKey, 100, false),
    trustIndexName(INDEX, SIGNER.policyKey, 148, true), trustIndexName(INDEX + 1, SIGNER.policyKey, 100, true),
    trustIndexName(INDEX, OTHER.policyKey, 100, true),
  ].map((name) => name.toString('hex')));
  assert.is(names.size, 5);
});

test('policies recomputed from the formulas: compare = PolicyCommandCode(PolicyNV); update = PolicyNV(header EQ) + PolicyNV(version LT) + PolicyCpHash(NV_Write)', () => {
  assert.equal(comparePolicy(), sha256(Buffer.alloc(32), hex('0000016c'), hex('00000149')));
  const name = trustIndexName(INDEX, SIGNER.policyKey, 4 + 3 * 48, true);
  const slotBytes = Buffer.concat([hex('0000000000000003'), hex('0000000000012345'), Buffer.alloc(32, 0xd3)]);
  // PolicyNV: H(old || 0x149 || H(operandB || offset u16 || operation u16) || index Name); slot 2 is at 4 + 2 * 48 = 0x64.
  // First the header (format 1, sha256 = 1, 3 slots) at offset 0, EQ = 0; then the slot's version, UNSIGNED_LT = 5.
  const layout = sha256(Buffer.alloc(32), hex('00000149'), sha256(hex('01010300'), hex('0000'), hex('0000')), name);
  const nv = sha256(layout, hex('00000149'), sha256(hex('0000000000000003'), hex('0064'), hex('0005')), name);
  // cpHash(NV_Write) = H(0x137 || authHandle Name || index Name || TPM2B data || offset u16).
  const cpHash = sha256(hex('00000137'), name, name, hex('0030'), slotBytes, hex('0064'));
  const expected = sha256(nv, hex('0000016e'), cpHash);
  assert.equal(updatePolicy(SIGNER.policyKey, { nvIndex: INDEX, algorithm: 'sha256', slots: 3, slot: 2 }, IMAGE), expected);
  // Every input changes the policy: slot, slot count, index, version, size, digest, key.
  const base = { nvIndex: INDEX, algorithm: 'sha256' as const, slots: 3, slot: 2 };
  const variants = [
    updatePolicy(SIGNER.policyKey, { ...base, slot: 1 }, IMAGE), updatePolicy(SIGNER.policyKey, { ...base, slots: 4 }, IMAGE),
    updatePolicy(SIGNER.policyKey, { ...base, nvIndex: INDEX + 1 }, IMAGE), updatePolicy(SIGNER.policyKey, base, { ...IMAGE, version: 4 }),
    updatePolicy(SIGNER.policyKey, base, { ...IMAGE, size: 1 }), updatePolicy(SIGNER.policyKey, base, { ...IMAGE, digest: { algorithm: 'sha256', bytes: Buffer.alloc(32, 1) } }),
    updatePolicy(OTHER.policyKey, base, IMAGE),
  ].map((policy) => policy.toString('hex'));
  assert.is(new Set([...variants, expected.toString('hex')]).size, 8);
});

test('sign, serialize, parse: a round trip; checkUpdate accepts every signed slot count (RSA and ECDSA) and refuses others', () => {
  for (const signer of [SIGNER, EC_SIGNER]) {
    const update = signUpdate(signer, IMAGE, INDEX);
    assert.equal(update.writes.map((write) => `${write.slots}:${write.slot}`), ['2:0', '2:1', '3:0', '3:1', '3:2', '4:0', '4:1', '4:2', '4:3']);
    const text = serializeUpdate(update);
    const parsed = parseUpdate(text, 'f');
    assert.equal(parsed, update);
    assert.is(JSON.parse(text).format, UPDATE_FORMAT);
    assert.is(JSON.parse(text).nvIndex, '0x01000e01');
    for (const slots of [2, 3, 4]) assert.is(checkUpdate(parsed, signer.policyKey, slots, 'f').length, slots);
    assert.throws(() => checkUpdate(parsed, signer.policyKey, 5, 'f'), /was not signed for a set of 5 slots \(signed for 2, 3, 4\)/);
    checkSigner(parsed, signer.policyKey);
  }
  const sha512 = signUpdate(SIGNER, { version: 9, size: 1, digest: { algorithm: 'sha512', bytes: Buffer.alloc(64, 5) } }, INDEX, [6, 2, 6]);
  assert.equal([...new Set(sha512.writes.map((write) => write.slots))], [2, 6]);
  assert.is(checkUpdate(parseUpdate(serializeUpdate(sha512)), SIGNER.policyKey, 6).length, 6);
  assert.throws(() => signUpdate(SIGNER, IMAGE, INDEX, [7]), /2 to 6 slots/);
  assert.throws(() => signUpdate(SIGNER, { ...IMAGE, version: 0 }, INDEX), /a version is a whole number/);
});

test('software checks refuse another key, flipped bytes, and a write moved to another slot, count, version or index', () => {
  const text = serializeUpdate(signUpdate(SIGNER, IMAGE, INDEX));
  const json = () => JSON.parse(text) as Record<string, any>;
  const check = (record: Record<string, unknown>, slots = 2) => checkUpdate(parseUpdate(JSON.stringify(record), 'u.trust'), SIGNER.policyKey, slots, 'u.trust');
  const flip = (value: string, at = 10) => value.slice(0, at) + (value[at] === '0' ? '1' : '0') + value.slice(at + 1);

  const foreign = parseUpdate(serializeUpdate(signUpdate(OTHER, IMAGE, INDEX)));
  assert.throws(() => checkSigner(foreign, SIGNER.policyKey, 'x'), /version 3 \(sha256:d3d3.*\) is not signed by the policy key \(key name in the file: 000b/);
  assert.throws(() => checkUpdate(foreign, SIGNER.policyKey, 2), /is not signed by the policy key/);
  try {
    checkUpdate(foreign, SIGNER.policyKey, 2, 'u.trust');
    assert.unreachable();
  } catch (error) {
    assert.instance(error, UpdateFileError);
    assert.is((error as UpdateFileError).path, 'u.trust');
  }

  const compareFlipped = json();
  compareFlipped.compare.signature = flip(compareFlipped.compare.signature);
  assert.throws(() => check(compareFlipped), /is not signed by the policy key/);
  const writeFlipped = json();
  writeFlipped.writes[1].signature = flip(writeFlipped.writes[1].signature);
  assert.throws(() => check(writeFlipped), /the write for slot 1 of 2 is not the one the policy key signed/);
  assert.is(check(writeFlipped, 3).length, 3, 'a flipped signature for 2 slots does not concern a 3-slot machine');
  const policyFlipped = json();
  policyFlipped.writes[0].policy = flip(policyFlipped.writes[0].policy);
  assert.throws(() => check(policyFlipped), /the write for slot 0 of 2 is not the one/);
  // The digest, size, version or index changed in the file: every signed policy was for other bytes.
  for (const [field, value] of [['digest', `sha256:${'d4'.repeat(32)}`], ['size', IMAGE.size + 1], ['version', 4], ['nvIndex', '0x01000e02']] as const) {
    const changed = json();
    changed[field] = value;
    assert.throws(() => check(changed), /the write for slot 0 of 2 is not the one the policy key signed/, field);
  }
  // Slot 0's signed write relabelled as slot 1's (a write aimed at another slot), or a 3-slot write as a 2-slot one.
  const moved = json();
  moved.writes[1] = { ...moved.writes[0], slot: 1 };
  assert.throws(() => check(moved), /the write for slot 1 of 2 is not the one/);
  const recounted = json();
  recounted.writes = recounted.writes.filter((write: { slots: number }) => write.slots === 3).map((write: { slot: number }) => ({ ...write, slots: 2 })).filter((write: { slot: number }) => write.slot < 2);
  assert.throws(() => check(recounted), /the write for slot 0 of 2 is not the one/);
  // The compare approval replaced by a write approval (validly signed, but not the compare policy).
  const swapped = json();
  swapped.compare = { policy: swapped.writes[0].policy, signature: swapped.writes[0].signature };
  assert.throws(() => check(swapped), /is not signed by the policy key/);
  assert.is(check(json()).length, 2);
});

test('parse is strict and bounded', () => {
  const text = serializeUpdate(signUpdate(SIGNER, IMAGE, INDEX));
  const edit = (change: (record: Record<string, any>) => void) => {
    const record = JSON.parse(text) as Record<string, any>;
    change(record);
    return JSON.stringify(record);
  };
  const refused: [string, string, RegExp][] = [
    ['huge', ' '.repeat(MAX_UPDATE_BYTES + 1), new RegExp(`${MAX_UPDATE_BYTES + 1} bytes \\(at most ${MAX_UPDATE_BYTES}\\)`)],
    ['truncated', text.slice(0, text.length / 2), /not JSON/],
    ['empty', '', /not JSON/],
    ['array', '[]', /not an object/],
    ['null', 'null', /not an object/],
    ['other format', edit((r) => { r.format = 'sealroot-trust-update/2'; }), /format is not sealroot-trust-update\/1/],
    ['no format', edit((r) => { delete r.format; }), /format is not/],
    ['version 0', edit((r) => { r.version = 0; }), /a version is a whole number/],
    ['version -1', edit((r) => { r.version = -1; }), /a version is a whole number/],
    ['version 1.5', edit((r) => { r.version = 1.5; }), /bad version/],
    ['version string', edit((r) => { r.version = '3'; }), /bad version/],
    ['version 2^53', edit((r) => { r.version = 2 ** 53; }), /bad version/],
    ['size 0', edit((r) => { r.size = 0; }), /bad size/],
    ['size -5', edit((r) => { r.size = -5; }), /bad size/],
    ['digest missing', edit((r) => { delete r.digest; }), /bad digest/],
    ['digest short', edit((r) => { r.digest = `sha256:${'d3'.repeat(31)}`; }), /not a valid trust update/],
    ['digest algorithm', edit((r) => { r.digest = `md5:${'d3'.repeat(16)}`; }), /not a valid trust update/],
    ['nvIndex number', edit((r) => { r.nvIndex = 16780801; }), /bad nvIndex/],
    ['nvIndex short', edit((r) => { r.nvIndex = '0x1000e01'; }), /bad nvIndex/],
    ['nvIndex upper', edit((r) => { r.nvIndex = '0x01000E01'; }), /bad nvIndex/],
    ['policyKey odd', edit((r) => { r.policyKey = 'abc'; }), /bad policyKey/],
    ['compare missing', edit((r) => { delete r.compare; }), /bad compare/],
    ['compare policy short', edit((r) => { r.compare.policy = 'ab'; }), /bad compare policy/],
    ['compare signature uppercase', edit((r) => { r.compare.signature = r.compare.signature.toUpperCase(); }), /bad compare signature/],
    ['signature huge', edit((r) => { r.compare.signature = 'ab'.repeat(1025); }), /bad compare signature/],
    ['writes missing', edit((r) => { delete r.writes; }), /bad writes list/],
    ['writes empty', edit((r) => { r.writes = []; }), /bad writes list/],
    ['writes too many', edit((r) => { r.writes = new Array(37).fill(r.writes[0]); }), /bad writes list/],
    ['write not an object', edit((r) => { r.writes[0] = 5; }), /bad write 0 slots/],
    ['slot of 1', edit((r) => { r.writes[0].slots = 1; }), /write 0: slot 0 of 1/],
    ['slot of 7', edit((r) => { r.writes[0].slots = 7; }), /write 0: slot 0 of 7/],
    ['slot out of range', edit((r) => { r.writes[2].slot = 3; }), /write 2: slot 3 of 3/],
    ['slot negative', edit((r) => { r.writes[0].slot = -1; }), /write 0: slot -1 of 2/],
    ['write policy missing', edit((r) => { delete r.writes[1].policy; }), /bad write 1 policy/],
  ];
  for (const [what, bad, message] of refused) {
    try {
      parseUpdate(bad, 'u.trust');
      assert.unreachable(`${what} was accepted`);
    } catch (error) {
      assert.instance(error, UpdateFileError, what);
      assert.match((error as Error).message, /^not a valid trust update: /, what);
      assert.match((error as Error).message, message, what);
      assert.is((error as UpdateFileError).path, 'u.trust');
    }
  }
  assert.is(parseUpdate(text).image.version, 3);
  // An extra field changes nothing signed (every policy is recomputed from the signed fields): accepted.
  assert.is(checkUpdate(parseUpdate(edit((r) => { r.comment = 'x'; })), SIGNER.policyKey, 2).length, 2);
});

test.run();
