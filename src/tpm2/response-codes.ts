// TPM_RC decoding (Part 2 §6.6): format-zero codes (version 1 errors and warnings) and format-one codes, which
// carry the number of the handle, session or parameter at fault. Rendered the way tpm2-tools users know them.

const FORMAT_ONE: Readonly<Record<number, string>> = {
  0x001: 'ASYMMETRIC', 0x002: 'ATTRIBUTES', 0x003: 'HASH', 0x004: 'VALUE', 0x005: 'HIERARCHY', 0x007: 'KEY_SIZE',
  0x008: 'MGF', 0x009: 'MODE', 0x00a: 'TYPE', 0x00b: 'HANDLE', 0x00c: 'KDF', 0x00d: 'RANGE', 0x00e: 'AUTH_FAIL',
  0x00f: 'NONCE', 0x010: 'PP', 0x012: 'SCHEME', 0x015: 'SIZE', 0x016: 'SYMMETRIC', 0x017: 'TAG', 0x018: 'SELECTOR',
  0x01a: 'INSUFFICIENT', 0x01b: 'SIGNATURE', 0x01c: 'KEY', 0x01d: 'POLICY_FAIL', 0x01f: 'INTEGRITY', 0x020: 'TICKET',
  0x021: 'RESERVED_BITS', 0x022: 'BAD_AUTH', 0x023: 'EXPIRED', 0x024: 'POLICY_CC', 0x025: 'BINDING', 0x026: 'CURVE',
  0x027: 'ECC_POINT',
};

const VERSION_ONE: Readonly<Record<number, string>> = {
  0x000: 'INITIALIZE', 0x001: 'FAILURE', 0x003: 'SEQUENCE', 0x00b: 'PRIVATE', 0x019: 'HMAC', 0x020: 'DISABLED',
  0x021: 'EXCLUSIVE', 0x024: 'AUTH_TYPE', 0x025: 'AUTH_MISSING', 0x026: 'POLICY', 0x027: 'PCR', 0x028: 'PCR_CHANGED',
  0x02d: 'UPGRADE', 0x02e: 'TOO_MANY_CONTEXTS', 0x02f: 'AUTH_UNAVAILABLE', 0x030: 'REBOOT', 0x031: 'UNBALANCED',
  0x042: 'COMMAND_SIZE', 0x043: 'COMMAND_CODE', 0x044: 'AUTHSIZE', 0x045: 'AUTH_CONTEXT', 0x046: 'NV_RANGE',
  0x047: 'NV_SIZE', 0x048: 'NV_LOCKED', 0x049: 'NV_AUTHORIZATION', 0x04a: 'NV_UNINITIALIZED', 0x04b: 'NV_SPACE',
  0x04c: 'NV_DEFINED', 0x050: 'BAD_CONTEXT', 0x051: 'CPHASH', 0x052: 'PARENT', 0x053: 'NEEDS_TEST', 0x054: 'NO_RESULT',
  0x055: 'SENSITIVE',
};

const WARNINGS: Readonly<Record<number, string>> = {
  0x001: 'CONTEXT_GAP', 0x002: 'OBJECT_MEMORY', 0x003: 'SESSION_MEMORY', 0x004: 'MEMORY', 0x005: 'SESSION_HANDLES',
  0x006: 'OBJECT_HANDLES', 0x007: 'LOCALITY', 0x008: 'YIELDED', 0x009: 'CANCELED', 0x00a: 'TESTING', 0x020: 'NV_RATE',
  0x021: 'LOCKOUT', 0x022: 'RETRY', 0x023: 'NV_UNAVAILABLE',
};

export const TPM_RC_SUCCESS = 0x000;
export const TPM_RC_INITIALIZE = 0x100;
export const TPM_RC_FAILURE = 0x101;
export const TPM_RC_LOCKOUT = 0x921;
export const TPM_RC_RETRY = 0x922;
export const TPM_RC_YIELDED = 0x908;
export const TPM_RC_TESTING = 0x90a;

export interface DecodedRc {
  /** e.g. TPM_RC_POLICY_FAIL */
  name: string;
  /** The base code without the handle/session/parameter number (format one) or the code itself. */
  base: number;
  /** Which handle, session or parameter the TPM blames (format one), 1-based as in the spec. */
  subject?: { kind: 'handle' | 'session' | 'parameter'; index: number };
  warning: boolean;
}

export function decodeRc(rc: number): DecodedRc {
  const layer = rc >>> 16;
  if (layer !== 0) {
    // TSS/resource-manager layers (tpm2-tss's TSS2_RC_LAYER); the kernel's resource manager only returns TPM codes.
    return { name: `TSS layer ${layer} error 0x${(rc & 0xffff).toString(16).padStart(4, '0')}`, base: rc, warning: false };
  }
  if ((rc & 0x080) !== 0) {
    const number = rc & 0x3f;
    const base = 0x080 | number;
    const name = `TPM_RC_${FORMAT_ONE[number] ?? `0x${base.toString(16)}`}`;
    if ((rc & 0x040) !== 0) return { name, base, subject: { kind: 'parameter', index: (rc >>> 8) & 0xf }, warning: false };
    const index = (rc >>> 8) & 0x7;
    if (index === 0) return { name, base, warning: false };
    return { name, base, subject: { kind: (rc & 0x800) !== 0 ? 'session' : 'handle', index }, warning: false };
  }
  if ((rc & 0x100) === 0) return { name: `TPM 1.2 response code 0x${rc.toString(16)}`, base: rc, warning: false };
  if ((rc & 0x400) !== 0) return { name: `TPM vendor code 0x${rc.toString(16)}`, base: rc, warning: false };
  const number = rc & 0x7f;
  if ((rc & 0x800) !== 0) {
    const reference = number >= 0x010 && number <= 0x016 ? `REFERENCE_H${number - 0x010}`
      : number >= 0x018 && number <= 0x01e ? `REFERENCE_S${number - 0x018}` : undefined;
    return { name: `TPM_RC_${reference ?? WARNINGS[number] ?? `0x${rc.toString(16)}`}`, base: rc, warning: true };
  }
  return { name: `TPM_RC_${VERSION_ONE[number] ?? `0x${rc.toString(16)}`}`, base: rc, warning: false };
}

/** `TPM_RC_POLICY_FAIL (session 1)` */
export function formatRc(rc: number): string {
  const decoded = decodeRc(rc);
  const subject = decoded.subject === undefined ? '' : ` (${decoded.subject.kind} ${decoded.subject.index})`;
  return `${decoded.name}${subject}`;
}

/** A TPM command that returned a response code other than success. */
export class TpmError extends Error {
  readonly rc: number;
  readonly command: string;
  readonly decoded: DecodedRc;

  constructor(command: string, rc: number) {
    const decoded = decodeRc(rc);
    super(`${command}: ${formatRc(rc)} [0x${rc.toString(16).padStart(3, '0')}]${hint(decoded.base)}`);
    this.name = 'TpmError';
    this.rc = rc;
    this.command = command;
    this.decoded = decoded;
  }

  /** The code without the handle/session/parameter number: compare with the TPM_RC_* base values. */
  get base(): number {
    return this.decoded.base;
  }
}

function hint(base: number): string {
  if (base === TPM_RC_LOCKOUT) return ' (the TPM is in dictionary-attack lockout)';
  if (base === TPM_RC_INITIALIZE) return ' (the TPM has not been started: TPM2_Startup)';
  if (base === TPM_RC_FAILURE) return ' (the TPM is in failure mode, or a simulator was not initialized: swtpm --flags not-need-init)';
  return '';
}

export const RC = {
  VALUE: 0x084,
  HANDLE: 0x08b,
  POLICY_FAIL: 0x09d,
  /** TPM2_PolicyNV: the comparison did not hold (Part 2 §6.6.3 TPM_RC_POLICY). */
  POLICY: 0x126,
  SIGNATURE: 0x09b,
  NV_DEFINED: 0x14c,
  NV_UNINITIALIZED: 0x14a,
  NV_AUTHORIZATION: 0x149,
  AUTH_UNAVAILABLE: 0x12f,
  ATTRIBUTES: 0x082,
  AUTH_FAIL: 0x08e,
  BAD_AUTH: 0x0a2,
} as const;
