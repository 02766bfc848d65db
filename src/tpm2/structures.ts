// The structures sealroot marshals: TPMS_NV_PUBLIC (§13.5), TPMT_PUBLIC for an RSA signing key (§12.2.4),
// TPMT_SIGNATURE (§11.3.4), TPMT_TK_VERIFIED (§10.7.3), and the Name of an entity (Part 1 §16).
import { hash } from '../crypto/primitives.ts';
import { TPM_ALG, TPM_ST_VERIFIED } from './constants.ts';
import { Reader, TpmFormatError, Writer } from './marshal.ts';

export function sha256(...parts: Uint8Array[]): Buffer {
  return hash('sha256', ...parts);
}

export interface NvPublic {
  nvIndex: number;
  nameAlg: number;
  attributes: number;
  authPolicy: Buffer;
  dataSize: number;
}

export function marshalNvPublic(pub: NvPublic): Buffer {
  return new Writer().u32(pub.nvIndex).u16(pub.nameAlg).u32(pub.attributes).sized(pub.authPolicy).u16(pub.dataSize).finish();
}

export function unmarshalNvPublic(reader: Reader): NvPublic {
  return { nvIndex: reader.u32(), nameAlg: reader.u16(), attributes: reader.u32(), authPolicy: reader.sized(), dataSize: reader.u16() };
}

/** Name = nameAlg || H(marshalled public area); sealroot only uses SHA-256 names. */
export function nameOf(nameAlg: number, marshalledPublic: Buffer): Buffer {
  if (nameAlg !== TPM_ALG.SHA256) throw new TpmFormatError(`name algorithm 0x${nameAlg.toString(16)} not supported (sha256 only)`);
  return Buffer.concat([new Writer().u16(nameAlg).finish(), sha256(marshalledPublic)]);
}

export function nvName(pub: NvPublic): Buffer {
  return nameOf(pub.nameAlg, marshalNvPublic(pub));
}

export interface RsaPublic {
  nameAlg: number;
  attributes: number;
  keyBits: number;
  exponent: number;
  modulus: Buffer;
}

/** TPMT_PUBLIC of an RSA key with no symmetric part and a NULL scheme, as tpm2_loadexternal builds it from a PEM. */
export function marshalRsaPublic(key: RsaPublic): Buffer {
  return new Writer()
    .u16(TPM_ALG.RSA).u16(key.nameAlg).u32(key.attributes).sized(Buffer.alloc(0))
    .u16(TPM_ALG.NULL) // symmetric
    .u16(TPM_ALG.NULL) // scheme
    .u16(key.keyBits).u32(key.exponent)
    .sized(key.modulus)
    .finish();
}

export function rsaName(key: RsaPublic): Buffer {
  return nameOf(key.nameAlg, marshalRsaPublic(key));
}

export interface EccPublic {
  nameAlg: number;
  attributes: number;
  curve: number;
  x: Buffer;
  y: Buffer;
}

/** TPMT_PUBLIC of an ECC key with no symmetric part, NULL scheme and NULL KDF, as tpm2_loadexternal -G ecc builds it. */
export function marshalEccPublic(key: EccPublic): Buffer {
  return new Writer()
    .u16(TPM_ALG.ECC).u16(key.nameAlg).u32(key.attributes).sized(Buffer.alloc(0))
    .u16(TPM_ALG.NULL) // symmetric
    .u16(TPM_ALG.NULL) // scheme
    .u16(key.curve)
    .u16(TPM_ALG.NULL) // kdf
    .sized(key.x).sized(key.y)
    .finish();
}

export function marshalRsassaSignature(signature: Buffer): Buffer {
  return new Writer().u16(TPM_ALG.RSASSA).u16(TPM_ALG.SHA256).sized(signature).finish();
}

/** TPMS_SIGNATURE_ECDSA from the IEEE P1363 form (r || s, each the curve's size). */
export function marshalEcdsaSignature(signature: Buffer): Buffer {
  const half = signature.length / 2;
  if (!Number.isInteger(half)) throw new TpmFormatError(`ECDSA signature of odd length ${signature.length}`);
  return new Writer().u16(TPM_ALG.ECDSA).u16(TPM_ALG.SHA256).sized(signature.subarray(0, half)).sized(signature.subarray(half)).finish();
}

export interface VerifiedTicket {
  tag: number;
  hierarchy: number;
  digest: Buffer;
}

export function marshalTicket(ticket: VerifiedTicket): Buffer {
  return new Writer().u16(ticket.tag).u32(ticket.hierarchy).sized(ticket.digest).finish();
}

export function unmarshalTicket(reader: Reader): VerifiedTicket {
  const ticket = { tag: reader.u16(), hierarchy: reader.u32(), digest: reader.sized() };
  if (ticket.tag !== TPM_ST_VERIFIED) throw new TpmFormatError(`ticket tag 0x${ticket.tag.toString(16)} is not TPM_ST_VERIFIED`);
  return ticket;
}
