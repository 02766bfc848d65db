// Raw TPM2_PCR_Extend commands the guest's busybox init sends to /dev/tpmrm0 to create the "measured boot state"
// (TCG TPM 2.0 Library Part 3, 22.2). Built here so the guest needs no TPM tool of its own and the test does not
// depend on sealroot's own TPM client to set the state sealroot is then checked against.
import { createHash } from 'node:crypto';

const TPM_ST_SESSIONS = 0x8002;
const TPM_CC_PCR_EXTEND = 0x182;
const TPM_RS_PW = 0x40000009;
const TPM_ALG_SHA256 = 0x000b;

export function sha256(data: string | Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

export function pcrExtendCommand(pcr: number, digest: Buffer): Buffer {
  if (digest.length !== 32) throw new Error('pcrExtendCommand: a SHA-256 digest is 32 bytes');
  const body = Buffer.alloc(65);
  let at = 0;
  at = body.writeUInt16BE(TPM_ST_SESSIONS, at);
  at = body.writeUInt32BE(body.length, at);
  at = body.writeUInt32BE(TPM_CC_PCR_EXTEND, at);
  at = body.writeUInt32BE(pcr, at);
  // Authorization area: one password session with an empty password (PCRs 0-15 have an empty authValue).
  at = body.writeUInt32BE(9, at);
  at = body.writeUInt32BE(TPM_RS_PW, at);
  at = body.writeUInt16BE(0, at); // nonce
  at = body.writeUInt8(0, at); // session attributes
  at = body.writeUInt16BE(0, at); // hmac
  at = body.writeUInt32BE(1, at); // TPML_DIGEST_VALUES.count
  at = body.writeUInt16BE(TPM_ALG_SHA256, at);
  digest.copy(body, at);
  return body;
}

/** The SHA-256 bank value after extending `digests` in order into a PCR that starts at zero. */
export function predictPcr(digests: readonly Buffer[]): Buffer {
  let value: Buffer = Buffer.alloc(32);
  for (const digest of digests) value = sha256(Buffer.concat([value, digest]));
  return value;
}
