// TPM 2.0 marshalling against byte strings captured from tpm2-tools 5.4 talking to swtpm 0.7.1
// (TSS2_LOG=tcti+trace), and the response-code decoding of Part 2 §6.6.
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CAP_EVENT } from '../../src/tpm2/approved-policy.ts';
import { MAX_EVENT_SIZE, Tpm } from '../../src/tpm2/client.ts';
import { TPM_ALG, TPM_CAP_PCRS, TPM_CC, TPM_RH_OWNER } from '../../src/tpm2/constants.ts';
import { buildCommand, parseResponse, passwordSession } from '../../src/tpm2/frame.ts';
import { Reader, TpmFormatError, Writer } from '../../src/tpm2/marshal.ts';
import { marshalPcrSelection, parsePcrSelection, unmarshalPcrSelection } from '../../src/tpm2/pcr-selection.ts';
import { policyAuthorize, policyPcr, ZERO_POLICY } from '../../src/tpm2/policy.ts';
import { loadPolicyKey } from '../../src/tpm2/policy-key.ts';
import { decodeRc, formatRc, TpmError } from '../../src/tpm2/response-codes.ts';
import { trustIndexPublic } from '../../src/trust/policies.ts';
import { marshalNvPublic, nvName, unmarshalNvPublic } from '../../src/tpm2/structures.ts';

const hex = (text: string) => Buffer.from(text, 'hex');
const TEST_KEY = path.resolve(import.meta.dirname, '../../keys/test-policy-key.pub.pem');

// tpm2_pcrread sha256:16
const GET_CAP_PCRS = '8001000000160000017a000000050000000000000001';
const GET_CAP_PCRS_RESPONSE = '80010000002b00000000000000000500000004000403ffffff000b03ffffff000c03ffffff000d03ffffff';
const PCR_READ_16 = '8001000000140000017e00000001000b03000001';
const PCR_READ_16_RESPONSE = `80010000003e00000000000000140000 0001000b030000010000000100200000${'00'.repeat(30)}`.replace(/ /g, '');
// tpm2_pcrextend 16:sha256=11..11 (password session, empty auth)
const PCR_EXTEND = `80020000004100000182000000100000000940000009000000000000000001000b${'11'.repeat(32)}`;
const PCR_EXTEND_RESPONSE = '80020000001300000000000000000000010000';
// tpm2_pcrevent 16 <file holding CAP_EVENT> (tpm2-tools 5.4, swtpm): its parameter area (TPM2B_EVENT; tpm2-tools
// authorizes with an HMAC session, sealroot with the password session) and the response's parameters
// (parameterSize, TPML_DIGEST_VALUES: sha1, sha256, sha384, sha512 of the event).
const PCR_EVENT_PARAMETERS = `0025${CAP_EVENT.toString('hex')}`;
const PCR_EVENT_RESPONSE_PARAMETERS = '000000b000000004000486a01dfc200c6bf6572072e3a8723f137f039e58000b10b1ae9557cdaf6efd0558ba3e5615f1'
  + 'ef958c3f6d04b7599d657e98662a9919000c9177bc1f37cf40b6a2bfd3019bdda71389bcc1c9487e9f050286f0aeccfce8b6953e0856'
  + 'beaab9b3c79e4f88a570d04a000d74b228cc9c0799a57decf89113a3f518d9b9b00609102ebefa34995a4452b05b9c88fe8256f5c381'
  + 'f80e22ca0b575a7b468cac356bc907b87b0df4772b5f2452';
// tpm2_nvreadpublic 0x01000e01 of an index sealroot provisioned with keys/test-policy-key.pem: the TPM computed the name.
const NV_READ_PUBLIC = '80010000000e0000016901000e01';
const NV_READ_PUBLIC_RESPONSE = '80010000005e00000000002e01000e01000b200810080020c3a19e2fe727c34aa36c8ea7aa81510a0f06b6f67c914c7c839567ee82580c6400200022000bce0060d1b944af1645fd567c49d65b5e9c96c093301d38d56a7c28e7952de71c';
// tpm2_loadexternal -C o -G rsa -u keys/test-policy-key.pub.pem, and the name the TPM returned.
const LOAD_EXTERNAL = '80010000012800000167000001160001000b000600400000001000100800000100010100aec8f135b15a4d1579d95565e103c44412fec0d115d11868a3bfb1cc739cbc027734abea00bad8411bbce1711a8a7ababeae6e4ee9afc40ef2a58b30e7bf9e7a39b6b726316b2894b4f46397f73efd5b78f7b70ebf54d14b0eed3ee93635f34338a2a2e4502f7101ba446e73e6061d897dd2fd6431a6544b0445a383cb6f7271d1fb1ed207daaed7bde4b19db6859c7890363b4bd890e7a470b0f116a82d3b7abb4ce00307210d9e199a063f834c1f0f8f6b9561e4fdda76931c6d34fec400a450359666acf6abcb5d1c7e3efd575b9d2743681bc78620449465d6ff69bfe580f768ca27225f8524b5ed35e5372b0b1487a4a975a31c6410b49c528fc183faa140000001';
const LOAD_EXTERNAL_RESPONSE = '80010000003200000000800000000022000b66b608030a1e3ca8690b1b1a1dfe132ef2df7d593cc5211624043943ef29c9b1';
// tpm2_policypcr -l sha256:8,9,15 in a trial session (PCR 8, 9 zero; 15 capped once by sealroot), then PolicyGetDigest.
const PCR_READ_8_9_15_RESPONSE = `800100000082000000000000001800000001000b030083000000000300200000${'00'.repeat(30)}0020${'00'.repeat(32)}0020c34a6722d68d440aa768ea69ec7bd23773f950547e2f357af3a54585e7362819`;
const POLICY_PCR = '80010000003a0000017f030000000020698aebe40213a8e7783c34272a4665c49147a6502646f3b3b1e1ba703d12abe200000001000b03008300';
const POLICY_GET_DIGEST_RESPONSE = '80010000002c00000000002068a753ed9969ab38b6f533716352d5738601a5dafbdf4aa15744f3d51fdd8cb9';

test('GetCapability(TPM_CAP_PCRS) and PCR_Read frames equal tpm2_pcrread\'s', () => {
  const cap = buildCommand(TPM_CC.GetCapability, [], undefined, new Writer().u32(TPM_CAP_PCRS).u32(0).u32(1).finish());
  assert.is(cap.toString('hex'), GET_CAP_PCRS);
  const capResponse = parseResponse(hex(GET_CAP_PCRS_RESPONSE), 0);
  const reader = new Reader(capResponse.parameters);
  assert.is(reader.u8(), 0);
  assert.is(reader.u32(), TPM_CAP_PCRS);
  const banks = unmarshalPcrSelection(reader);
  reader.end();
  assert.equal(banks.map((b) => b.bank), ['sha1', 'sha256', 'sha384', 'sha512']);
  assert.is(banks[1]!.pcrs.length, 24);

  const read = buildCommand(TPM_CC.PCR_Read, [], undefined, marshalPcrSelection(parsePcrSelection('sha256:16')).finish());
  assert.is(read.toString('hex'), PCR_READ_16);
  const response = parseResponse(hex(PCR_READ_16_RESPONSE), 0);
  const values = new Reader(response.parameters);
  assert.is(values.u32(), 0x14); // pcrUpdateCounter
  assert.equal(unmarshalPcrSelection(values), [{ bank: 'sha256', pcrs: [16] }]);
  assert.is(values.u32(), 1);
  assert.equal(values.sized(), Buffer.alloc(32));
  values.end();
});

test('PCR_Extend with the password session equals tpm2_pcrextend\'s frame; its response parses', () => {
  const parameters = new Writer().u32(1).u16(0x000b).bytes(Buffer.alloc(32, 0x11)).finish();
  const frame = buildCommand(TPM_CC.PCR_Extend, [16], [passwordSession()], parameters);
  assert.is(frame.toString('hex'), PCR_EXTEND);
  const response = parseResponse(hex(PCR_EXTEND_RESPONSE), 0);
  assert.is(response.rc, 0);
  assert.is(response.parameters.length, 0);
});

/** A response frame with sessions: parameterSize, the parameters, the password session's response (continueSession). */
function sessionResponse(parameters: Buffer): Buffer {
  const rest = new Writer().u32(parameters.length).bytes(parameters).sized(Buffer.alloc(0)).u8(1).sized(Buffer.alloc(0)).finish();
  return new Writer().u16(0x8002).u32(10 + rest.length).u32(0).bytes(rest).finish();
}

/** TPML_DIGEST_VALUES: count, then (hashAlg, digest) as given. */
function digestValues(entries: [number, Buffer][]): Buffer {
  const writer = new Writer().u32(entries.length);
  for (const [alg, digest] of entries) writer.u16(alg).bytes(digest);
  return writer.finish();
}

/** A Tpm whose transport answers `respond` (no TPM behind it): the frames it was sent are kept. */
async function fakeTpm(respond: (frame: Buffer) => Buffer): Promise<{ tpm: Tpm; sent: Buffer[] }> {
  const tpm = await Tpm.open('device:/dev/null');
  const sent: Buffer[] = [];
  tpm.transport.transmit = async (frame: Buffer) => {
    sent.push(frame);
    return respond(frame);
  };
  return { tpm, sent };
}

async function refusal(promise: Promise<unknown>): Promise<Error> {
  return promise.then(() => assert.unreachable('accepted'), (error: unknown) => error as Error) as Promise<Error>;
}

test('PCR_Event: the password-session frame with tpm2_pcrevent\'s TPM2B_EVENT; swtpm\'s TPML_DIGEST_VALUES parses', async () => {
  const captured = hex(PCR_EVENT_RESPONSE_PARAMETERS);
  assert.is(captured.readUInt32BE(0), captured.length - 4);
  const { tpm, sent } = await fakeTpm(() => sessionResponse(captured.subarray(4)));
  try {
    const digests = await tpm.pcrEvent(16, CAP_EVENT);
    // TPM_ST_SESSIONS, 66 bytes, TPM_CC_PCR_Event; handle PCR 16; the empty password session (9 bytes); the event.
    assert.equal(sent.map((frame) => frame.toString('hex')), [`8002000000420000013c0000001000000009400000090000000000${PCR_EVENT_PARAMETERS}`]);
    assert.equal(digests.map((entry) => [entry.bank, entry.digest.length]), [['sha1', 20], ['sha256', 32], ['sha384', 48], ['sha512', 64]]);
    assert.is(digests[1]!.digest.toString('hex'), '10b1ae9557cdaf6efd0558ba3e5615f1ef958c3f6d04b7599d657e98662a9919');
  } finally {
    await tpm.close();
  }
});

test('PCR_Event: refuses event data over 1024 bytes before sending, and a response that is truncated, too long or unparseable', async () => {
  const sha256 = Buffer.alloc(32, 0x5a);
  let answer = sessionResponse(digestValues([[TPM_ALG.SHA256, sha256]]));
  const { tpm, sent } = await fakeTpm(() => answer);
  try {
    assert.is(MAX_EVENT_SIZE, 1024);
    const oversize = await refusal(tpm.pcrEvent(15, Buffer.alloc(1025)));
    assert.instance(oversize, TpmFormatError);
    assert.match(oversize.message, /PCR_Event data of 1025 bytes \(a TPM2B_EVENT holds at most 1024\)/);
    assert.is(sent.length, 0, 'nothing sent');
    assert.equal(await tpm.pcrEvent(15, Buffer.alloc(1024)), [{ bank: 'sha256', digest: sha256 }]);
    assert.is(sent.length, 1);
    assert.is(sent[0]!.readUInt16BE(27), 1024);

    const refused = async (parameters: Buffer, pattern: RegExp, what: string) => {
      answer = sessionResponse(parameters);
      const error = await refusal(tpm.pcrEvent(15, CAP_EVENT));
      assert.instance(error, TpmFormatError, what);
      assert.match(error.message, pattern, what);
    };
    const full = digestValues([[TPM_ALG.SHA1, Buffer.alloc(20, 1)], [TPM_ALG.SHA256, sha256]]);
    await refused(full.subarray(0, full.length - 1), /^TPM2_PCR_Event response truncated: need 32 bytes at offset 28 of 59$/, 'a digest one byte short');
    await refused(full.subarray(0, 28), /truncated/, 'the second entry cut after its hashAlg');
    await refused(Buffer.concat([full, Buffer.of(0)]), /^TPM2_PCR_Event response: 1 unexpected trailing bytes$/, 'one byte more');
    await refused(digestValues([[TPM_ALG.SHA256, sha256]]).fill(0xff, 0, 4), /TPML_DIGEST_VALUES with 4294967295 entries/, 'a huge count');
    await refused(digestValues([]), /PCR_Event returned no digest/, 'no digest');
    await refused(digestValues([[0x0099, sha256]]), /names hash algorithm 0x99, whose digest size sealroot does not know/, 'an algorithm of unknown size');
    await refused(digestValues([[TPM_ALG.SHA256, sha256], [TPM_ALG.SHA256, sha256]]), /names sha256 twice/, 'an algorithm twice');
    // The frame itself cut short: its size field no longer matches.
    answer = sessionResponse(full).subarray(0, -1);
    assert.match((await refusal(tpm.pcrEvent(15, CAP_EVENT))).message, /TPM response size field 79 but 78 bytes received/);

    // A hash with no bank name here, of a size the TCG registry gives (SHA3-256: 0x0027): kept as its id.
    answer = sessionResponse(digestValues([[0x0027, Buffer.alloc(32, 3)], [TPM_ALG.SHA256, sha256]]));
    assert.equal(await tpm.pcrEvent(15, CAP_EVENT), [{ bank: 0x27, digest: Buffer.alloc(32, 3) }, { bank: 'sha256', digest: sha256 }]);
  } finally {
    await tpm.close();
  }
});

test('NV_ReadPublic: the public area sealroot expects has exactly the name the TPM computed', () => {
  assert.is(buildCommand(TPM_CC.NV_ReadPublic, [0x01000e01], undefined, Buffer.alloc(0)).toString('hex'), NV_READ_PUBLIC);
  const response = parseResponse(hex(NV_READ_PUBLIC_RESPONSE), 0);
  const reader = new Reader(response.parameters);
  const publicBytes = reader.sized();
  const tpmName = reader.sized();
  reader.end();
  const pub = unmarshalNvPublic(new Reader(publicBytes));
  assert.is(pub.attributes, 0x20081008); // POLICYWRITE | WRITEALL | POLICYREAD | WRITTEN
  assert.equal(marshalNvPublic(pub), publicBytes);
  assert.is(nvName(pub).toString('hex'), tpmName.toString('hex'));
  // The capture is of the single-digest design's index (32 bytes, WRITEALL, policyRef sealroot/nv-digest/v1): the
  // public area rebuilt from those facts has the TPM's name.
  const key = loadPolicyKey(TEST_KEY);
  const expected = { nvIndex: 0x01000e01, nameAlg: TPM_ALG.SHA256, attributes: 0x20081008, authPolicy: policyAuthorize(key.name, Buffer.from('sealroot/nv-digest/v1')), dataSize: 32 };
  assert.is(nvName(expected).toString('hex'), tpmName.toString('hex'));
  // Another attribute, or the trusted-set index of the same size: another name (no approval of one design counts for the other).
  assert.is.not(nvName({ ...expected, attributes: expected.attributes | 0x4 }).toString('hex'), tpmName.toString('hex'));
  assert.is.not(nvName(trustIndexPublic(0x01000e01, key, 32, true)).toString('hex'), tpmName.toString('hex'));
});

test('LoadExternal of the PEM policy key equals tpm2_loadexternal\'s frame; the TPM named it as sealroot does', () => {
  const key = loadPolicyKey(TEST_KEY);
  const frame = buildCommand(TPM_CC.LoadExternal, [], undefined, new Writer().u16(0).sized(key.publicArea).u32(TPM_RH_OWNER).finish());
  assert.is(frame.toString('hex'), LOAD_EXTERNAL);
  const response = parseResponse(hex(LOAD_EXTERNAL_RESPONSE), 1);
  assert.equal(response.handles, [0x80000000]);
  const name = new Reader(response.parameters).sized();
  assert.is(name.toString('hex'), key.name.toString('hex'));
});

test('PolicyPCR: frame as tpm2_policypcr sends it, and the software digest equals the TPM\'s PolicyGetDigest', () => {
  const selection = parsePcrSelection('sha256:8,9,15');
  const read = new Reader(parseResponse(hex(PCR_READ_8_9_15_RESPONSE), 0).parameters);
  read.u32();
  unmarshalPcrSelection(read);
  const count = read.u32();
  const values = Array.from({ length: count }, () => read.sized());
  // tpm2-tools passes the PCR digest it computed; sealroot passes an empty one (the TPM uses the current values).
  const pcrDigest = hex(POLICY_PCR.slice(2 * 14 + 4, 2 * 14 + 4 + 64));
  const frame = buildCommand(TPM_CC.PolicyPCR, [0x03000000], undefined, marshalPcrSelection(selection, new Writer().sized(pcrDigest)).finish());
  assert.is(frame.toString('hex'), POLICY_PCR);
  const tpmDigest = new Reader(parseResponse(hex(POLICY_GET_DIGEST_RESPONSE), 0).parameters).sized();
  assert.is(policyPcr(ZERO_POLICY, selection, values).toString('hex'), tpmDigest.toString('hex'));
});

test('response codes: names, handle/session/parameter numbers, warnings', () => {
  assert.is(formatRc(0x09d), 'TPM_RC_POLICY_FAIL');
  assert.is(formatRc(0x99d), 'TPM_RC_POLICY_FAIL (session 1)');
  assert.is(formatRc(0x18b), 'TPM_RC_HANDLE (handle 1)');
  assert.is(formatRc(0x28b), 'TPM_RC_HANDLE (handle 2)');
  assert.is(formatRc(0x1c4), 'TPM_RC_VALUE (parameter 1)');
  assert.is(formatRc(0x2d5), 'TPM_RC_SIZE (parameter 2)');
  assert.is(formatRc(0x98e), 'TPM_RC_AUTH_FAIL (session 1)');
  assert.is(formatRc(0x921), 'TPM_RC_LOCKOUT');
  assert.is(formatRc(0x149), 'TPM_RC_NV_AUTHORIZATION');
  assert.is(formatRc(0x14c), 'TPM_RC_NV_DEFINED');
  assert.is(formatRc(0x100), 'TPM_RC_INITIALIZE');
  assert.is(formatRc(0x922), 'TPM_RC_RETRY');
  assert.is(formatRc(0x910), 'TPM_RC_REFERENCE_H0');
  assert.is(decodeRc(0x99d).base, 0x09d);
  assert.equal(decodeRc(0x99d).subject, { kind: 'session', index: 1 });
  assert.ok(decodeRc(0x921).warning);
  assert.match(formatRc(0x000b0101), /^TSS layer 11 error 0x0101$/);
  const error = new TpmError('TPM2_NV_Read', 0x99d);
  assert.is(error.message, 'TPM2_NV_Read: TPM_RC_POLICY_FAIL (session 1) [0x99d]');
  assert.is(error.base, 0x09d);
  assert.match(new TpmError('TPM2_NV_Read', 0x921).message, /dictionary-attack lockout/);
  // tpm2_nvwrite -C o on sealroot's index (no OWNERWRITE): the 10-byte error response.
  assert.is(parseResponse(hex('80010000000a00000149'), 0).rc, 0x149);
});

test('frames: a size field that disagrees, a truncated body, trailing bytes', () => {
  assert.throws(() => parseResponse(hex('80010000000b00000000'), 0), (e: unknown) => e instanceof TpmFormatError && /size field 11/.test(e.message));
  assert.throws(() => parseResponse(hex('80010000000c000000000001'), 1), /truncated/);
  assert.throws(() => parseResponse(hex('c4010000000a00000000'), 0), /tag 0xc401/);
  const reader = new Reader(hex('0001ff'));
  assert.is(reader.sized().toString('hex'), 'ff');
  reader.end();
  assert.throws(() => new Reader(hex('0002ff')).sized(), /truncated/);
  assert.throws(() => new Reader(hex('00')).end(), /trailing/);
});

test.run();
