// K_pcr, the PCR-policy signing key: its public half (PEM, from the initramfs) as the TPM sees it, and signing with
// the private half (the vendor's offline job). RSA (RSASSA-PKCS1-v1_5, as systemd's signed PCR policies) or ECDSA
// (NIST P-256/P-384), always over SHA-256 digests. A boot reads the usual `PUBLIC KEY` PEM without node:crypto
// (public-key-der.ts); node:crypto is loaded at the call, only for what needs a KeyObject (other PEMs, the software
// signature check, signing).
import type { KeyObject } from 'node:crypto';
import * as fs from 'node:fs';
import { nodeCrypto } from '../crypto/primitives.ts';
import { readUntrustedText, UntrustedFileError } from '../sys/untrusted-file.ts';
import { ECC_CURVES, TPM_ALG, TPMA_OBJECT } from './constants.ts';
import { parseSubjectPublicKeyInfo, publicKeyPemDer, type PublicKeyComponents } from './public-key-der.ts';
import { marshalEccPublic, marshalEcdsaSignature, marshalRsaPublic, marshalRsassaSignature, nameOf } from './structures.ts';

export const DEFAULT_POLICY_KEY = '/etc/sealroot/policy-key.pem';

/** tpm2_loadexternal's attributes for a public key (userwithauth|decrypt|sign), so that the Names agree. */
const ATTRIBUTES = TPMA_OBJECT.USERWITHAUTH | TPMA_OBJECT.DECRYPT | TPMA_OBJECT.SIGN;

export interface PolicyKey {
  /** node:crypto's object for the key, made (node:crypto loaded) when first read: only software checks need it. */
  readonly key: KeyObject;
  kind: 'rsa' | 'ecdsa';
  /** TPMT_PUBLIC as tpm2_loadexternal builds it from the PEM. */
  publicArea: Buffer;
  name: Buffer;
  /** The size of every raw signature by the key: the modulus's (PKCS#1 v1.5), twice a coordinate's (P1363). */
  signatureSize: number;
  /** A raw signature (PKCS#1 v1.5 for RSA, IEEE P1363 r||s for ECDSA) as TPMT_SIGNATURE. */
  marshalSignature(raw: Buffer): Buffer;
}

export class PolicyKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PolicyKeyError';
  }
}

/** `fields` with the key made by `keyObject` when (and if) it is first read. */
function withLazyKey(fields: Omit<PolicyKey, 'key'>, keyObject: () => KeyObject): PolicyKey {
  let key: KeyObject | undefined;
  return {
    ...fields,
    get key() {
      key ??= keyObject();
      return key;
    },
  };
}

/** The policy key with these components (the TPM's public area and Name are built from them alone). */
function policyKeyFromComponents(components: PublicKeyComponents, keyObject: () => KeyObject): PolicyKey {
  if (components.kind === 'rsa') {
    const { modulus, exponent } = components;
    if (exponent.length > 4) throw new PolicyKeyError('RSA public exponent larger than 32 bits');
    const keyBits = modulus.length * 8;
    if (![2048, 3072, 4096].includes(keyBits)) throw new PolicyKeyError(`RSA key of ${keyBits} bits (2048, 3072 or 4096)`);
    const publicArea = marshalRsaPublic({ nameAlg: TPM_ALG.SHA256, attributes: ATTRIBUTES, keyBits, exponent: exponent.readUIntBE(0, exponent.length), modulus });
    return withLazyKey({ kind: 'rsa', publicArea, name: nameOf(TPM_ALG.SHA256, publicArea), signatureSize: modulus.length, marshalSignature: marshalRsassaSignature }, keyObject);
  }
  const curve = ECC_CURVES[components.curve]!;
  const coordinate = (bytes: Buffer) => Buffer.concat([Buffer.alloc(curve.size - bytes.length), bytes]);
  const publicArea = marshalEccPublic({ nameAlg: TPM_ALG.SHA256, attributes: ATTRIBUTES, curve: curve.id, x: coordinate(components.x), y: coordinate(components.y) });
  return withLazyKey({ kind: 'ecdsa', publicArea, name: nameOf(TPM_ALG.SHA256, publicArea), signatureSize: 2 * curve.size, marshalSignature: marshalEcdsaSignature }, keyObject);
}

export function policyKeyFromObject(key: KeyObject): PolicyKey {
  const publicKey = key.type === 'private' ? nodeCrypto().createPublicKey(key) : key;
  const jwk = publicKey.export({ format: 'jwk' });
  if (publicKey.asymmetricKeyType === 'rsa') {
    return policyKeyFromComponents({ kind: 'rsa', modulus: Buffer.from(jwk.n!, 'base64url'), exponent: Buffer.from(jwk.e!, 'base64url') }, () => publicKey);
  }
  if (publicKey.asymmetricKeyType === 'ec') {
    const crv = jwk.crv;
    if (crv !== 'P-256' && crv !== 'P-384') throw new PolicyKeyError(`EC key on curve ${crv ?? '?'} (P-256 or P-384)`);
    return policyKeyFromComponents({ kind: 'ec', curve: crv, x: Buffer.from(jwk.x!, 'base64url'), y: Buffer.from(jwk.y!, 'base64url') }, () => publicKey);
  }
  throw new PolicyKeyError(`policy key is ${publicKey.asymmetricKeyType ?? 'not asymmetric'}; sealroot supports RSA and EC (P-256, P-384) keys`);
}

/** The KeyObject of components read from DER, through a JWK import (~0.1 ms; createPublicKey of the PEM: ~0.7 ms). */
function importComponents(components: PublicKeyComponents): KeyObject {
  const jwk = components.kind === 'rsa'
    ? { kty: 'RSA', n: components.modulus.toString('base64url'), e: components.exponent.toString('base64url') }
    : { kty: 'EC', crv: components.curve, x: components.x.toString('base64url'), y: components.y.toString('base64url') };
  return nodeCrypto().createPublicKey({ key: jwk, format: 'jwk' });
}

/**
 * The policy key of a PEM: a `PUBLIC KEY` of the kinds sealroot supports without node:crypto, anything else (a
 * private key, another label, algorithm or curve) through node:crypto. Throws PolicyKeyError naming `path`.
 */
export function policyKeyFromPem(pem: string, path: string): PolicyKey {
  try {
    const der = publicKeyPemDer(pem);
    const components = der === undefined ? undefined : parseSubjectPublicKeyInfo(der);
    if (components !== undefined) return policyKeyFromComponents(components, () => importComponents(components));
    return policyKeyFromObject(nodeCrypto().createPublicKey(pem));
  } catch (error) {
    if (error instanceof PolicyKeyError) throw error;
    throw new PolicyKeyError(`${path} is not a PEM RSA or EC key: ${(error as Error).message}`);
  }
}

/** Reads a PEM public key (or the public half of a PEM private key). */
export function loadPolicyKey(path: string): PolicyKey {
  let pem: string;
  try {
    // A trusted file of the initramfs, still read bounded and only if it is a regular file (a PEM key is < 4 KiB).
    pem = readUntrustedText(path, { maxBytes: 64 * 1024, under: null, followLast: true });
  } catch (error) {
    if (error instanceof UntrustedFileError) throw new PolicyKeyError(`cannot read the policy key ${path}: ${error.code ?? error.reason}`);
    throw new PolicyKeyError(`cannot read the policy key ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  return policyKeyFromPem(pem, path);
}

export interface Signer {
  policyKey: PolicyKey;
  /** A SHA-256 signature over `data`, as TPMT_SIGNATURE. */
  sign(data: Buffer): Buffer;
  /** The same, raw (PKCS#1 v1.5, or P1363 r||s): what approvals.json stores. */
  signRaw(data: Buffer): Buffer;
}

export function signerFromObject(privateKey: KeyObject): Signer {
  const policyKey = policyKeyFromObject(privateKey);
  const signRaw = (data: Buffer) => nodeCrypto().sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return { policyKey, signRaw, sign: (data) => policyKey.marshalSignature(signRaw(data)) };
}

export function loadSigner(path: string): Signer {
  let privateKey: KeyObject;
  try {
    privateKey = nodeCrypto().createPrivateKey(fs.readFileSync(path));
  } catch (error) {
    throw new PolicyKeyError(`cannot load the signing key ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  return signerFromObject(privateKey);
}

/** Checks a raw signature in software (for a clear error where the TPM's refusal would be less clear). */
export function verifyRaw(policyKey: PolicyKey, data: Buffer, signature: Buffer): boolean {
  return nodeCrypto().verify('sha256', data, { key: policyKey.key, dsaEncoding: 'ieee-p1363' }, signature);
}
