// Numbers from the TCG TPM 2.0 Library spec, Part 2 (structures): the subset sealroot uses.

export const TPM_ST_NO_SESSIONS = 0x8001;
export const TPM_ST_SESSIONS = 0x8002;
export const TPM_ST_VERIFIED = 0x8022;

/** Part 2 §6.5.2 TPM_CC. */
export const TPM_CC = {
  NV_UndefineSpace: 0x0000_0122,
  NV_DefineSpace: 0x0000_012a,
  NV_Write: 0x0000_0137,
  PCR_Event: 0x0000_013c,
  Startup: 0x0000_0144,
  PolicyNV: 0x0000_0149,
  NV_Read: 0x0000_014e,
  PolicySigned: 0x0000_0160,
  FlushContext: 0x0000_0165,
  LoadExternal: 0x0000_0167,
  NV_ReadPublic: 0x0000_0169,
  PolicyAuthorize: 0x0000_016a,
  PolicyCommandCode: 0x0000_016c,
  PolicyCpHash: 0x0000_016e,
  StartAuthSession: 0x0000_0176,
  VerifySignature: 0x0000_0177,
  GetCapability: 0x0000_017a,
  GetRandom: 0x0000_017b,
  PCR_Read: 0x0000_017e,
  PolicyPCR: 0x0000_017f,
  PCR_Extend: 0x0000_0182,
  PolicyGetDigest: 0x0000_0189,
} as const;

/** Part 2 §6.8 TPM_EO: how TPM2_PolicyNV compares the index's bytes (operand A) with operandB (big-endian). */
export const TPM_EO = {
  EQ: 0x0000,
  NEQ: 0x0001,
  UNSIGNED_GT: 0x0003,
  UNSIGNED_LT: 0x0005,
  UNSIGNED_GE: 0x0007,
  UNSIGNED_LE: 0x0009,
} as const;

export const COMMAND_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(TPM_CC).map(([name, code]) => [code, `TPM2_${name}`]));

/** Part 2 §6.3 TPM_ALG_ID. */
export const TPM_ALG = {
  RSA: 0x0001,
  SHA1: 0x0004,
  SHA256: 0x000b,
  SHA384: 0x000c,
  SHA512: 0x000d,
  NULL: 0x0010,
  SM3_256: 0x0012,
  RSASSA: 0x0014,
  ECDSA: 0x0018,
  ECC: 0x0023,
} as const;

/** Part 2 §6.4 TPM_ECC_CURVE, by the JWK names of the curves sealroot accepts. */
export const ECC_CURVES: Readonly<Record<string, { id: number; size: number }>> = {
  'P-256': { id: 0x0003, size: 32 },
  'P-384': { id: 0x0004, size: 48 },
};

/** Part 2 §7.4 permanent handles, §15 session handles. */
export const TPM_RH_OWNER = 0x4000_0001;
export const TPM_RH_NULL = 0x4000_0007;
export const TPM_RS_PW = 0x4000_0009;

export const TPM_SE_POLICY = 0x01;
export const TPM_SU_CLEAR = 0x0000;
export const TPM_CAP_PCRS = 0x0000_0005;

/** Part 2 §8.4 TPMA_SESSION. */
export const TPMA_SESSION_CONTINUE = 0x01;

/** Part 2 §13.4 TPMA_NV bits. */
export const TPMA_NV = {
  PPWRITE: 1 << 0,
  OWNERWRITE: 1 << 1,
  AUTHWRITE: 1 << 2,
  POLICYWRITE: 1 << 3,
  POLICY_DELETE: 1 << 10,
  WRITELOCKED: 1 << 11,
  WRITEALL: 1 << 12,
  WRITEDEFINE: 1 << 13,
  WRITE_STCLEAR: 1 << 14,
  PPREAD: 1 << 16,
  OWNERREAD: 1 << 17,
  AUTHREAD: 1 << 18,
  POLICYREAD: 1 << 19,
  NO_DA: 1 << 25,
  WRITTEN: 1 << 29,
} as const;

/** Part 2 §8.3 TPMA_OBJECT bits used by the external policy key (tpm2_loadexternal's defaults). */
export const TPMA_OBJECT = {
  USERWITHAUTH: 1 << 6,
  DECRYPT: 1 << 17,
  SIGN: 1 << 18,
} as const;

/** Hash algorithms of PCR banks, by their tpm2-tools names. */
export const BANKS = {
  sha1: { alg: TPM_ALG.SHA1, size: 20, node: 'sha1' },
  sha256: { alg: TPM_ALG.SHA256, size: 32, node: 'sha256' },
  sha384: { alg: TPM_ALG.SHA384, size: 48, node: 'sha384' },
  sha512: { alg: TPM_ALG.SHA512, size: 64, node: 'sha512' },
  sm3_256: { alg: TPM_ALG.SM3_256, size: 32, node: 'sm3' },
} as const;

export type BankName = keyof typeof BANKS;

export function bankByAlg(alg: number): BankName | undefined {
  for (const [name, bank] of Object.entries(BANKS)) if (bank.alg === alg) return name as BankName;
  return undefined;
}

/**
 * Digest sizes of the hash algorithms a TPM may implement that have no bank name here (TCG Algorithm Registry:
 * TPM_ALG_SHA3_256/384/512): enough to parse a TPML_DIGEST_VALUES that lists them.
 */
export const OTHER_HASH_SIZES: ReadonlyMap<number, number> = new Map([[0x0027, 32], [0x0028, 48], [0x0029, 64]]);

/** A bank for a message: its name, or the algorithm id of one sealroot has no name for. */
export function bankLabel(bank: BankName | number): string {
  return typeof bank === 'string' ? bank : `0x${bank.toString(16)}`;
}

export const PCR_COUNT = 24;
