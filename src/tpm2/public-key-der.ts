// Pure: a `-----BEGIN PUBLIC KEY-----` PEM (SubjectPublicKeyInfo, RFC 5280 §4.1) of the kinds a policy key may be,
// read without node:crypto (whose loading and createPublicKey cost ~140 ms of a boot under QEMU TCG): RSA
// (rsaEncryption, RFC 8017 A.1.1) and EC on P-256/P-384 (id-ecPublicKey with a namedCurve, an uncompressed point,
// RFC 5480). Strict DER (X.690 §10): definite minimal lengths, minimal INTEGERs, nothing after the structure.
// Any other algorithm or curve is not read here (undefined): node:crypto reads it, and refuses it, as before.
import { isWhitespace } from '../text/chars.ts';

/** What a policy key is made of: the TPM's public area is built from these. */
export type PublicKeyComponents =
  | { kind: 'rsa'; modulus: Buffer; exponent: Buffer }
  | { kind: 'ec'; curve: 'P-256' | 'P-384'; x: Buffer; y: Buffer };

export class PublicKeyDerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PublicKeyDerError';
  }
}

const PEM_LABEL = 'PUBLIC KEY';

// DER encodings of the OIDs (X.690 §8.19), compared byte for byte.
const RSA_ENCRYPTION = Buffer.from('2a864886f70d010101', 'hex'); // 1.2.840.113549.1.1.1
const EC_PUBLIC_KEY = Buffer.from('2a8648ce3d0201', 'hex'); // 1.2.840.10045.2.1
const CURVES = [
  // prime256v1 (1.2.840.10045.3.1.7) and secp384r1 (1.3.132.0.34): p, b and the size of a coordinate (SEC 2 §2.4).
  {
    name: 'P-256', oid: Buffer.from('2a8648ce3d030107', 'hex'), size: 32,
    p: 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn,
    b: 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn,
  },
  {
    name: 'P-384', oid: Buffer.from('2b81040022', 'hex'), size: 48,
    p: 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffffn,
    b: 0xb3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aefn,
  },
] as const;

const TAG = { INTEGER: 0x02, BIT_STRING: 0x03, NULL: 0x05, OID: 0x06, SEQUENCE: 0x30 } as const;
const TAG_NAMES: Readonly<Record<number, string>> = { 0x02: 'INTEGER', 0x03: 'BIT STRING', 0x05: 'NULL', 0x06: 'OBJECT IDENTIFIER', 0x30: 'SEQUENCE' };
/** A policy key's DER is < 1 KiB (RSA-4096: 550 bytes): lengths of more than two bytes are never needed. */
const MAX_LENGTH_BYTES = 2;

/** One DER element's contents at a time, bounded by its parent. */
class DerReader {
  readonly bytes: Buffer;
  readonly what: string;
  #offset = 0;

  constructor(bytes: Buffer, what: string) {
    this.bytes = bytes;
    this.what = what;
  }

  get done(): boolean {
    return this.#offset === this.bytes.length;
  }

  /** The contents of the next element, which must have `tag`. */
  element(tag: number): Buffer {
    const name = TAG_NAMES[tag]!;
    if (this.#offset + 2 > this.bytes.length) throw new PublicKeyDerError(`${this.what}: truncated before a ${name}`);
    const found = this.bytes[this.#offset]!;
    if (found !== tag) throw new PublicKeyDerError(`${this.what}: a tag 0x${found.toString(16).padStart(2, '0')} where a ${name} belongs`);
    let length = this.bytes[this.#offset + 1]!;
    this.#offset += 2;
    if (length & 0x80) {
      const count = length & 0x7f;
      if (count === 0 || count > MAX_LENGTH_BYTES) throw new PublicKeyDerError(`${this.what}: a ${name} with a ${count === 0 ? 'indefinite' : `${count}-byte`} length`);
      if (this.#offset + count > this.bytes.length) throw new PublicKeyDerError(`${this.what}: truncated in a ${name}'s length`);
      length = this.bytes.readUIntBE(this.#offset, count);
      this.#offset += count;
      // X.690 §10.1: the fewest length octets; the short form for lengths below 128.
      if (length < 0x80 || length < 2 ** (8 * (count - 1))) throw new PublicKeyDerError(`${this.what}: a ${name} whose length is not in its shortest form`);
    }
    if (this.#offset + length > this.bytes.length) throw new PublicKeyDerError(`${this.what}: truncated in a ${name} (${length} bytes announced, ${this.bytes.length - this.#offset} left)`);
    const contents = this.bytes.subarray(this.#offset, this.#offset + length);
    this.#offset += length;
    return contents;
  }

  /** A nested reader over the next SEQUENCE's contents. */
  sequence(what: string): DerReader {
    return new DerReader(this.element(TAG.SEQUENCE), what);
  }

  /** A non-negative INTEGER's value bytes, without the sign byte (X.690 §8.3.2: minimal two's complement). */
  unsignedInteger(name: string): Buffer {
    const contents = this.element(TAG.INTEGER);
    if (contents.length === 0) throw new PublicKeyDerError(`${this.what}: ${name} is an empty INTEGER`);
    if (contents[0]! & 0x80) throw new PublicKeyDerError(`${this.what}: ${name} is negative`);
    if (contents.length > 1 && contents[0] === 0 && !(contents[1]! & 0x80)) throw new PublicKeyDerError(`${this.what}: ${name} is not in its shortest form`);
    const value = contents[0] === 0 ? contents.subarray(1) : contents;
    if (value.length === 0) throw new PublicKeyDerError(`${this.what}: ${name} is zero`);
    return value;
  }

  end(): void {
    if (!this.done) throw new PublicKeyDerError(`${this.what}: ${this.bytes.length - this.#offset} bytes after its end`);
  }
}

/**
 * The DER of the PEM's one `PUBLIC KEY` block, or undefined when the text's first PEM block has another label (a
 * private key, `RSA PUBLIC KEY`, ...): those are node:crypto's to read. Only whitespace may surround the block, its
 * body is base64 lines and nothing else.
 */
export function publicKeyPemDer(pem: string): Buffer | undefined {
  if (firstPemLabel(pem) !== PEM_LABEL) return undefined;
  const body = publicKeyBlockBody(pem);
  if (body === undefined) throw new PublicKeyDerError('not one PUBLIC KEY block of base64 lines, with nothing around it but whitespace');
  // Padding only at the very end, and a length Buffer.from('base64') decodes exactly.
  let end = body.length;
  while (end > 0 && end > body.length - 2 && body.charCodeAt(end - 1) === EQUALS) end--;
  for (let i = 0; i < end; i++) {
    if (!isBase64Char(body.charCodeAt(i))) throw new PublicKeyDerError('the PUBLIC KEY block is not base64');
  }
  if (body.length % 4 !== 0) throw new PublicKeyDerError('the PUBLIC KEY block is not base64');
  return Buffer.from(body, 'base64');
}

// The PEM text is read with string operations, not regular expressions (src/text/chars.ts says why).
const BEGIN = '-----BEGIN ';
const DASHES = '-----';
const HEADER = `-----BEGIN ${PEM_LABEL}-----`;
const FOOTER = `-----END ${PEM_LABEL}-----`;
const EQUALS = 0x3d;

/** [A-Za-z0-9+/] */
function isBase64Char(code: number): boolean {
  return (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a) || (code >= 0x30 && code <= 0x39) || code === 0x2b || code === 0x2f;
}

/** [A-Z0-9 ] */
function isLabelChar(code: number): boolean {
  return (code >= 0x41 && code <= 0x5a) || (code >= 0x30 && code <= 0x39) || code === 0x20;
}

/** The label of the first `-----BEGIN <label>-----` in the text (label: one or more of [A-Z0-9 ]), if any. */
function firstPemLabel(pem: string): string | undefined {
  for (let at = pem.indexOf(BEGIN); at >= 0; at = pem.indexOf(BEGIN, at + 1)) {
    const start = at + BEGIN.length;
    let end = start;
    while (end < pem.length && isLabelChar(pem.charCodeAt(end))) end++;
    if (end > start && pem.startsWith(DASHES, end)) return pem.slice(start, end);
  }
  return undefined;
}

/** Past a line end (\n or \r\n) at `at`, or -1. */
function pastLineEnd(text: string, at: number): number {
  if (text[at] === '\n') return at + 1;
  return text[at] === '\r' && text[at + 1] === '\n' ? at + 2 : -1;
}

/**
 * The base64 lines of the text's one PUBLIC KEY block, joined; undefined unless the text is whitespace, the header,
 * one or more lines of base64 characters each ending with at most two '=', the footer, whitespace.
 */
function publicKeyBlockBody(pem: string): string | undefined {
  let at = 0;
  while (at < pem.length && isWhitespace(pem[at]!)) at++;
  if (!pem.startsWith(HEADER, at)) return undefined;
  at = pastLineEnd(pem, at + HEADER.length);
  let body = '';
  while (at >= 0 && !pem.startsWith(FOOTER, at)) {
    let end = at;
    while (end < pem.length && isBase64Char(pem.charCodeAt(end))) end++;
    if (end === at) return undefined;
    for (let pads = 0; pads < 2 && pem.charCodeAt(end) === EQUALS; pads++) end++;
    body += pem.slice(at, end);
    at = pastLineEnd(pem, end);
  }
  if (at < 0 || body === '') return undefined;
  at += FOOTER.length;
  while (at < pem.length && isWhitespace(pem[at]!)) at++;
  return at === pem.length ? body : undefined;
}

/**
 * The components of an RSA or EC P-256/P-384 SubjectPublicKeyInfo; undefined for another algorithm or curve.
 * Throws PublicKeyDerError for DER that is malformed, or a kind read here that is encoded otherwise than strictly.
 */
export function parseSubjectPublicKeyInfo(der: Buffer): PublicKeyComponents | undefined {
  const outer = new DerReader(der, 'the public key');
  const info = outer.sequence('SubjectPublicKeyInfo');
  outer.end();
  const algorithm = info.sequence('AlgorithmIdentifier');
  const oid = algorithm.element(TAG.OID);
  const bits = info.element(TAG.BIT_STRING);
  info.end();
  if (bits.length === 0 || bits[0] !== 0) throw new PublicKeyDerError('subjectPublicKey: a BIT STRING of whole bytes expected (0 unused bits)');
  const key = bits.subarray(1);
  if (oid.equals(RSA_ENCRYPTION)) {
    // RFC 3279 §2.3.1: the parameters "MUST be present, and MUST have ASN.1 type NULL".
    if (algorithm.element(TAG.NULL).length !== 0) throw new PublicKeyDerError('AlgorithmIdentifier: rsaEncryption parameters are not NULL');
    algorithm.end();
    const outerKey = new DerReader(key, 'RSAPublicKey');
    const rsa = outerKey.sequence('RSAPublicKey');
    outerKey.end();
    const modulus = rsa.unsignedInteger('the modulus');
    const exponent = rsa.unsignedInteger('the public exponent');
    rsa.end();
    return { kind: 'rsa', modulus: Buffer.from(modulus), exponent: Buffer.from(exponent) };
  }
  if (oid.equals(EC_PUBLIC_KEY)) {
    const curveOid = algorithm.element(TAG.OID);
    algorithm.end();
    const curve = CURVES.find((entry) => entry.oid.equals(curveOid));
    if (curve === undefined) return undefined;
    // SEC 1 §2.3.3: 04 || X || Y; a compressed point (02/03) would need the square root node:crypto computes.
    if (key[0] !== 0x04) throw new PublicKeyDerError(`the ${curve.name} point is not in uncompressed form (04 || x || y; form 0x${(key[0] ?? 0).toString(16)})`);
    if (key.length !== 1 + 2 * curve.size) throw new PublicKeyDerError(`the ${curve.name} point holds ${key.length} bytes (${1 + 2 * curve.size} expected)`);
    const x = Buffer.from(key.subarray(1, 1 + curve.size));
    const y = Buffer.from(key.subarray(1 + curve.size));
    if (!onCurve(curve, x, y)) throw new PublicKeyDerError(`the point is not on ${curve.name}`);
    return { kind: 'ec', curve: curve.name, x, y };
  }
  return undefined;
}

/** SEC 1 §3.2.2.1 (as OpenSSL checks an imported point): coordinates below p and y^2 = x^3 - 3x + b (mod p). */
function onCurve(curve: { p: bigint; b: bigint }, xBytes: Buffer, yBytes: Buffer): boolean {
  const { p, b } = curve;
  const x = BigInt(`0x${xBytes.toString('hex')}`);
  const y = BigInt(`0x${yBytes.toString('hex')}`);
  if (x >= p || y >= p) return false;
  const mod = (value: bigint) => ((value % p) + p) % p;
  return mod(y * y) === mod(x * x * x - 3n * x + b);
}
