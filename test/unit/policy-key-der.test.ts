// The policy key's `PUBLIC KEY` PEM read without node:crypto (issue 15): the five kinds give node:crypto's values
// and the same TPM public area and Name; malformed DER and hostile PEMs are refused with a PolicyKeyError; other PEMs
// (private keys, PKCS#1, other algorithms and curves) still go through node:crypto with today's errors.
import * as nodeCrypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadPolicyKey, PolicyKeyError, policyKeyFromObject, policyKeyFromPem, verifyRaw } from '../../src/tpm2/policy-key.ts';
import { parseSubjectPublicKeyInfo, publicKeyPemDer } from '../../src/tpm2/public-key-der.ts';

type Kind = { name: string; options: nodeCrypto.RSAKeyPairOptions<'pem', 'pem'> | nodeCrypto.ECKeyPairOptions<'pem', 'pem'>; type: 'rsa' | 'ec' };
const KINDS: Kind[] = [
  ...[2048, 3072, 4096].map((bits) => ({ name: `RSA-${bits}`, type: 'rsa' as const, options: { modulusLength: bits, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } } as nodeCrypto.RSAKeyPairOptions<'pem', 'pem'> })),
  ...['P-256', 'P-384'].map((curve) => ({ name: curve, type: 'ec' as const, options: { namedCurve: curve, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } } as nodeCrypto.ECKeyPairOptions<'pem', 'pem'> })),
];
const PAIRS = KINDS.map((kind) => ({ kind, ...(kind.type === 'rsa'
  ? nodeCrypto.generateKeyPairSync('rsa', kind.options as nodeCrypto.RSAKeyPairOptions<'pem', 'pem'>)
  : nodeCrypto.generateKeyPairSync('ec', kind.options as nodeCrypto.ECKeyPairOptions<'pem', 'pem'>)) }));

/** A DER element: tag, minimal length, contents. */
function der(tag: number, ...contents: Buffer[]): Buffer {
  const body = Buffer.concat(contents);
  const length = body.length < 0x80 ? Buffer.from([body.length])
    : body.length < 0x100 ? Buffer.from([0x81, body.length]) : Buffer.from([0x82, body.length >> 8, body.length & 0xff]);
  return Buffer.concat([Buffer.from([tag]), length, body]);
}
const hex = (text: string) => Buffer.from(text, 'hex');
const pemOf = (bytes: Buffer, label = 'PUBLIC KEY') => `-----BEGIN ${label}-----\n${bytes.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END ${label}-----\n`;
const derOf = (pem: string) => nodeCrypto.createPublicKey(pem).export({ format: 'der', type: 'spki' });
const EC_P256 = der(0x30, der(0x06, hex('2a8648ce3d0201')), der(0x06, hex('2a8648ce3d030107')));
const RSA_ALG = der(0x30, der(0x06, hex('2a864886f70d010101')), der(0x05));
const refused = (pem: string, pattern: RegExp) => {
  assert.throws(() => policyKeyFromPem(pem, '/key.pem'), (error: unknown) => error instanceof PolicyKeyError && pattern.test((error as Error).message), pattern.source);
};

test('the five kinds: components as node:crypto\'s JWK, and the same public area and Name as the node:crypto path', () => {
  for (const { kind, publicKey } of PAIRS) {
    const jwk = nodeCrypto.createPublicKey(publicKey).export({ format: 'jwk' });
    const components = parseSubjectPublicKeyInfo(publicKeyPemDer(publicKey)!)!;
    if (components.kind === 'rsa') {
      assert.is(components.modulus.toString('base64url'), jwk.n, `${kind.name} n`);
      assert.is(components.exponent.toString('base64url'), jwk.e, `${kind.name} e`);
    } else {
      assert.equal([components.curve, components.x.toString('base64url'), components.y.toString('base64url')], [jwk.crv, jwk.x, jwk.y], kind.name);
    }
    const fast = policyKeyFromPem(publicKey, '/key.pem');
    const slow = policyKeyFromObject(nodeCrypto.createPublicKey(publicKey));
    assert.equal(fast.publicArea, slow.publicArea, `${kind.name} public area`);
    assert.equal(fast.name, slow.name, `${kind.name} Name`);
    assert.is(fast.kind, slow.kind);
    assert.is(fast.signatureSize, slow.signatureSize);
    assert.is(fast.signatureSize, kind.type === 'rsa' ? (kind.options as { modulusLength: number }).modulusLength / 8 : kind.name === 'P-256' ? 64 : 96, kind.name);
  }
});

test('the key is made when first needed (a JWK import), and verifies what the private key signed', () => {
  for (const { kind, publicKey, privateKey } of PAIRS) {
    const key = policyKeyFromPem(publicKey, '/key.pem');
    const data = Buffer.from(`approved ${kind.name}`);
    const signature = nodeCrypto.sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
    assert.is(signature.length, key.signatureSize, kind.name);
    assert.ok(verifyRaw(key, data, signature), kind.name);
    assert.not.ok(verifyRaw(key, Buffer.from('other'), signature), kind.name);
    assert.is(key.key, key.key, 'made once');
    assert.equal(key.key.export({ format: 'der', type: 'spki' }), derOf(publicKey), kind.name);
  }
});

test('CRLF lines and surrounding whitespace are read; the file through loadPolicyKey', () => {
  const { publicKey } = PAIRS[3]!;
  const expected = policyKeyFromPem(publicKey, '/key.pem').name;
  assert.equal(policyKeyFromPem(`\n  ${publicKey.replace(/\n/g, '\r\n')}\n\n`, '/key.pem').name, expected);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-der-'));
  try {
    fs.writeFileSync(path.join(dir, 'key.pem'), publicKey);
    assert.equal(loadPolicyKey(path.join(dir, 'key.pem')).name, expected);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('malformed DER is refused: truncated, trailing bytes, long-form length of a short value, indefinite length, non-minimal or negative INTEGERs', () => {
  const rsa = derOf(PAIRS[0]!.publicKey);
  refused(pemOf(rsa.subarray(0, rsa.length - 1)), /^\/key\.pem is not a PEM RSA or EC key: .*truncated/);
  refused(pemOf(Buffer.concat([rsa, Buffer.from([0])])), /the public key: 1 bytes after its end/);
  const ec = derOf(PAIRS[3]!.publicKey);
  const point = ec.subarray(ec.length - 65);
  assert.equal(der(0x30, EC_P256, der(0x03, Buffer.from([0]), point)), ec, 'the test\'s own DER encoder');
  // The AlgorithmIdentifier's length 0x13 written as 81 13.
  const longForm = Buffer.concat([Buffer.from([0x30, 0x5a, 0x30, 0x81, 0x13]), ec.subarray(4)]);
  refused(pemOf(longForm), /SEQUENCE whose length is not in its shortest form/);
  const indefinite = Buffer.concat([Buffer.from([0x30, 0x80]), ec.subarray(2), Buffer.from([0, 0])]);
  refused(pemOf(indefinite), /indefinite length/);
  const rsaKey = (modulus: Buffer, exponent: Buffer) => pemOf(der(0x30, RSA_ALG, der(0x03, Buffer.from([0]), der(0x30, der(0x02, modulus), der(0x02, exponent)))));
  const modulus = Buffer.concat([Buffer.from([0]), nodeCrypto.randomBytes(256)]);
  modulus[1]! |= 0x80;
  assert.not.throws(() => policyKeyFromPem(rsaKey(modulus, hex('010001')), '/key.pem'));
  refused(rsaKey(Buffer.concat([Buffer.from([0]), modulus]), hex('010001')), /the modulus is not in its shortest form/);
  refused(rsaKey(modulus.subarray(1), hex('010001')), /the modulus is negative/);
  refused(rsaKey(modulus, hex('00010001')), /the public exponent is not in its shortest form/);
  refused(rsaKey(modulus, hex('0100000001')), /RSA public exponent larger than 32 bits/);
  refused(pemOf(der(0x30, RSA_ALG, der(0x03, Buffer.from([0]), der(0x30, der(0x02, modulus), der(0x02, hex('010001')), der(0x02, hex('01')))))), /RSAPublicKey: 3 bytes after its end/);
  // rsaEncryption without its NULL parameters.
  refused(pemOf(der(0x30, der(0x30, der(0x06, hex('2a864886f70d010101'))), der(0x03, Buffer.from([0]), der(0x30, der(0x02, modulus), der(0x02, hex('010001')))))), /truncated before a NULL/);
  refused(pemOf(der(0x30, EC_P256, der(0x03, Buffer.from([1]), point))), /0 unused bits/);
});

test('the EC point: compressed, of the wrong size, off the curve: refused', () => {
  const ec = derOf(PAIRS[3]!.publicKey);
  const point = ec.subarray(ec.length - 65);
  const compressed = nodeCrypto.ECDH.convertKey(point, 'prime256v1', undefined, undefined, 'compressed') as Buffer;
  refused(pemOf(der(0x30, EC_P256, der(0x03, Buffer.from([0]), compressed))), /not in uncompressed form/);
  refused(pemOf(der(0x30, EC_P256, der(0x03, Buffer.from([0]), point.subarray(0, 64)))), /point holds 64 bytes \(65 expected\)/);
  refused(pemOf(der(0x30, EC_P256, der(0x03, Buffer.from([0]), Buffer.concat([point, Buffer.from([0])])))), /point holds 66 bytes/);
  const offCurve = Buffer.from(point);
  offCurve[64]! ^= 1;
  refused(pemOf(der(0x30, EC_P256, der(0x03, Buffer.from([0]), offCurve))), /the point is not on P-256/);
  // And node:crypto agrees that it is not a key.
  assert.throws(() => nodeCrypto.createPublicKey({ key: der(0x30, EC_P256, der(0x03, Buffer.from([0]), offCurve)), format: 'der', type: 'spki' }));
});

test('wrong OIDs, other algorithms and curves: through node:crypto, refused with today\'s lines', () => {
  const ec = derOf(PAIRS[3]!.publicKey);
  const unknownCurve = Buffer.from(ec);
  unknownCurve[unknownCurve.indexOf(hex('2a8648ce3d030107')) + 7] = 0x63;
  refused(pemOf(unknownCurve), /^\/key\.pem is not a PEM RSA or EC key: /);
  const rsa = derOf(PAIRS[0]!.publicKey);
  const wrongAlgorithm = Buffer.from(rsa);
  wrongAlgorithm[wrongAlgorithm.indexOf(hex('2a864886f70d010101')) + 8] = 0x0b; // sha256WithRSAEncryption
  refused(pemOf(wrongAlgorithm), /^\/key\.pem is not a PEM RSA or EC key: /);
  const small = nodeCrypto.generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'pem', type: 'spki' }) as string;
  refused(small, /^RSA key of 1024 bits \(2048, 3072 or 4096\)$/);
  const k1 = nodeCrypto.generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey.export({ format: 'pem', type: 'spki' }) as string;
  refused(k1, /^EC key on curve secp256k1 \(P-256 or P-384\)$/);
  const ed = nodeCrypto.generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }) as string;
  refused(ed, /^policy key is ed25519; sealroot supports RSA and EC \(P-256, P-384\) keys$/);
});

test('hostile PEMs: two keys, garbage between the markers or around them, bad base64', () => {
  const [first, second] = [PAIRS[3]!.publicKey, PAIRS[4]!.publicKey];
  refused(first + second, /not one PUBLIC KEY block/);
  refused(first.replace('\n', '\nhello, world!\n'), /not one PUBLIC KEY block/);
  refused(`garbage\n${first}`, /not one PUBLIC KEY block/);
  refused(`${first}trailing\n`, /not one PUBLIC KEY block/);
  refused(first.replace(/\n([A-Za-z0-9+/])/, '\n=$1'), /not base64|not one PUBLIC KEY block/);
  refused('-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n', /not one PUBLIC KEY block/);
  refused(pemOf(Buffer.alloc(0)), /not one PUBLIC KEY block/);
  refused('no PEM here', /^\/key\.pem is not a PEM RSA or EC key: /);
});

test('other PEMs go through node:crypto: PKCS#8 and SEC 1 private keys, a PKCS#1 public key', () => {
  for (const { kind, publicKey, privateKey } of PAIRS) {
    const expected = policyKeyFromPem(publicKey, '/key.pem').name;
    assert.equal(policyKeyFromPem(privateKey, '/key.pem').name, expected, `${kind.name} PKCS#8`);
    const traditional = nodeCrypto.createPrivateKey(privateKey).export({ format: 'pem', type: kind.type === 'rsa' ? 'pkcs1' : 'sec1' }) as string;
    assert.equal(policyKeyFromPem(traditional, '/key.pem').name, expected, `${kind.name} ${kind.type === 'rsa' ? 'PKCS#1' : 'SEC 1'} private`);
    if (kind.type === 'rsa') {
      const pkcs1 = nodeCrypto.createPublicKey(publicKey).export({ format: 'pem', type: 'pkcs1' }) as string;
      assert.match(pkcs1, /BEGIN RSA PUBLIC KEY/);
      assert.equal(policyKeyFromPem(pkcs1, '/key.pem').name, expected, `${kind.name} PKCS#1 public`);
    }
  }
});

test.run();
