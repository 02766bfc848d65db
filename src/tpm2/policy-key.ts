// K_pcr, the PCR-policy signing key: its public half (PEM, from the initramfs) as the TPM sees it, and signing with
// the private half (the vendor's offline job). RSA with RSASSA-PKCS1-v1_5/SHA-256, as systemd's signed PCR policies.
import { createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import * as fs from 'node:fs';
import { TPM_ALG, TPMA_OBJECT } from './constants.ts';
import { marshalRsaPublic, marshalRsassaSignature, type RsaPublic, rsaName } from './structures.ts';

export const DEFAULT_POLICY_KEY = '/etc/sealroot/policy-key.pem';

export interface PolicyKey {
  key: KeyObject;
  /** TPMT_PUBLIC as tpm2_loadexternal -G rsa builds it (attributes userwithauth|decrypt|sign), so names agree. */
  publicArea: Buffer;
  name: Buffer;
}

export class PolicyKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PolicyKeyError';
  }
}

export function policyKeyFromObject(key: KeyObject): PolicyKey {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  if (publicKey.asymmetricKeyType !== 'rsa') throw new PolicyKeyError(`policy key is ${publicKey.asymmetricKeyType ?? 'not asymmetric'}; sealroot supports RSA keys`);
  const jwk = publicKey.export({ format: 'jwk' });
  const modulus = Buffer.from(jwk.n!, 'base64url');
  const exponentBytes = Buffer.from(jwk.e!, 'base64url');
  if (exponentBytes.length > 4) throw new PolicyKeyError('RSA public exponent larger than 32 bits');
  const rsa: RsaPublic = {
    nameAlg: TPM_ALG.SHA256,
    attributes: TPMA_OBJECT.USERWITHAUTH | TPMA_OBJECT.DECRYPT | TPMA_OBJECT.SIGN,
    keyBits: modulus.length * 8,
    exponent: exponentBytes.readUIntBE(0, exponentBytes.length),
    modulus,
  };
  if (![2048, 3072, 4096].includes(rsa.keyBits)) throw new PolicyKeyError(`RSA key of ${rsa.keyBits} bits (2048, 3072 or 4096)`);
  return { key: publicKey, publicArea: marshalRsaPublic(rsa), name: rsaName(rsa) };
}

/** Reads a PEM public key (or the public half of a PEM private key). */
export function loadPolicyKey(path: string): PolicyKey {
  let pem: string;
  try {
    pem = fs.readFileSync(path, 'utf8');
  } catch (error) {
    throw new PolicyKeyError(`cannot read the policy key ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  try {
    return policyKeyFromObject(createPublicKey(pem));
  } catch (error) {
    if (error instanceof PolicyKeyError) throw error;
    throw new PolicyKeyError(`${path} is not a PEM RSA key: ${(error as Error).message}`);
  }
}

export interface Signer {
  policyKey: PolicyKey;
  /** RSASSA-SHA256 over `data`; returns a marshalled TPMT_SIGNATURE. */
  sign(data: Buffer): Buffer;
  /** The same, the bare signature bytes. */
  signRaw(data: Buffer): Buffer;
}

export function loadSigner(path: string): Signer {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(fs.readFileSync(path));
  } catch (error) {
    throw new PolicyKeyError(`cannot load the signing key ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const policyKey = policyKeyFromObject(privateKey);
  const signRaw = (data: Buffer) => sign('sha256', data, privateKey);
  return { policyKey, signRaw, sign: (data) => marshalRsassaSignature(signRaw(data)) };
}

/** Checks a raw RSASSA-SHA256 signature in software (before asking the TPM, for a clear error). */
export function verifyRaw(policyKey: PolicyKey, data: Buffer, signature: Buffer): boolean {
  return verify('sha256', data, policyKey.key, signature);
}
