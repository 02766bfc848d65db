// K_pcr, the PCR-policy signing key: its public half (PEM, from the initramfs) as the TPM sees it, and signing with
// the private half (the vendor's offline job). RSA (RSASSA-PKCS1-v1_5, as systemd's signed PCR policies) or ECDSA
// (NIST P-256/P-384), always over SHA-256 digests.
import { createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import * as fs from 'node:fs';
import { readUntrustedText, UntrustedFileError } from '../sys/untrusted-file.ts';
import { ECC_CURVES, TPM_ALG, TPMA_OBJECT } from './constants.ts';
import { marshalEccPublic, marshalEcdsaSignature, marshalRsaPublic, marshalRsassaSignature, nameOf } from './structures.ts';

export const DEFAULT_POLICY_KEY = '/etc/sealroot/policy-key.pem';

/** tpm2_loadexternal's attributes for a public key (userwithauth|decrypt|sign), so that the Names agree. */
const ATTRIBUTES = TPMA_OBJECT.USERWITHAUTH | TPMA_OBJECT.DECRYPT | TPMA_OBJECT.SIGN;

export interface PolicyKey {
  key: KeyObject;
  kind: 'rsa' | 'ecdsa';
  /** TPMT_PUBLIC as tpm2_loadexternal builds it from the PEM. */
  publicArea: Buffer;
  name: Buffer;
  /** A raw signature (PKCS#1 v1.5 for RSA, IEEE P1363 r||s for ECDSA) as TPMT_SIGNATURE. */
  marshalSignature(raw: Buffer): Buffer;
}

export class PolicyKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PolicyKeyError';
  }
}

export function policyKeyFromObject(key: KeyObject): PolicyKey {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  const jwk = publicKey.export({ format: 'jwk' });
  if (publicKey.asymmetricKeyType === 'rsa') {
    const modulus = Buffer.from(jwk.n!, 'base64url');
    const exponentBytes = Buffer.from(jwk.e!, 'base64url');
    if (exponentBytes.length > 4) throw new PolicyKeyError('RSA public exponent larger than 32 bits');
    const keyBits = modulus.length * 8;
    if (![2048, 3072, 4096].includes(keyBits)) throw new PolicyKeyError(`RSA key of ${keyBits} bits (2048, 3072 or 4096)`);
    const publicArea = marshalRsaPublic({ nameAlg: TPM_ALG.SHA256, attributes: ATTRIBUTES, keyBits, exponent: exponentBytes.readUIntBE(0, exponentBytes.length), modulus });
    return { key: publicKey, kind: 'rsa', publicArea, name: nameOf(TPM_ALG.SHA256, publicArea), marshalSignature: marshalRsassaSignature };
  }
  if (publicKey.asymmetricKeyType === 'ec') {
    const curve = jwk.crv === undefined ? undefined : ECC_CURVES[jwk.crv];
    if (curve === undefined) throw new PolicyKeyError(`EC key on curve ${jwk.crv ?? '?'} (P-256 or P-384)`);
    const coordinate = (value: string) => {
      const bytes = Buffer.from(value, 'base64url');
      return Buffer.concat([Buffer.alloc(curve.size - bytes.length), bytes]);
    };
    const publicArea = marshalEccPublic({ nameAlg: TPM_ALG.SHA256, attributes: ATTRIBUTES, curve: curve.id, x: coordinate(jwk.x!), y: coordinate(jwk.y!) });
    return { key: publicKey, kind: 'ecdsa', publicArea, name: nameOf(TPM_ALG.SHA256, publicArea), marshalSignature: marshalEcdsaSignature };
  }
  throw new PolicyKeyError(`policy key is ${publicKey.asymmetricKeyType ?? 'not asymmetric'}; sealroot supports RSA and EC (P-256, P-384) keys`);
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
  try {
    return policyKeyFromObject(createPublicKey(pem));
  } catch (error) {
    if (error instanceof PolicyKeyError) throw error;
    throw new PolicyKeyError(`${path} is not a PEM RSA or EC key: ${(error as Error).message}`);
  }
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
  const signRaw = (data: Buffer) => sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return { policyKey, signRaw, sign: (data) => policyKey.marshalSignature(signRaw(data)) };
}

export function loadSigner(path: string): Signer {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(fs.readFileSync(path));
  } catch (error) {
    throw new PolicyKeyError(`cannot load the signing key ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  return signerFromObject(privateKey);
}

/** Checks a raw signature in software (before asking the TPM, for a clear error). */
export function verifyRaw(policyKey: PolicyKey, data: Buffer, signature: Buffer): boolean {
  return verify('sha256', data, { key: policyKey.key, dsaEncoding: 'ieee-p1363' }, signature);
}
