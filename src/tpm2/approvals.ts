// The state directory: signed read approvals of PCR policies, one JSON file. Everything in it is public and
// attacker-writable; a record is worth nothing without a valid signature by K_pcr, which the TPM checks
// (TPM2_VerifySignature). Losing the file is a denial of service, never a forgery.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readUntrustedText, UntrustedFileError } from '../sys/untrusted-file.ts';
import { isLowerHexBytes } from '../text/chars.ts';

export const APPROVALS_FILE = 'approvals.json';
// Format 2: read approvals only, for the trusted-set index (format 1 also held the single-digest design's PCR-bound
// write approvals, which no longer exist).
const FORMAT = 'sealroot-tpm-approvals/2';

export type Purpose = 'read';

export interface Approval {
  purpose: Purpose;
  /** The approved policy digest (SHA-256). */
  policy: Buffer;
  /** Raw RSASSA signature over H(policy || policyRef). */
  signature: Buffer;
  /** For people: the selection and values the policy was computed from (not trusted, not used). */
  pcrs: string;
  values: Record<string, string>;
}

export class StateError extends Error {
  readonly path: string;

  constructor(file: string, message: string) {
    super(message);
    this.name = 'StateError';
    this.path = file;
  }
}

export function approvalsPath(stateDir: string): string {
  return path.join(stateDir, APPROVALS_FILE);
}

/** Parses the file strictly: any malformed record makes the whole file corrupt (no silent skipping). */
export function parseApprovals(text: string, file: string): Approval[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new StateError(file, `corrupted state file: not JSON (${(error as Error).message})`);
  }
  const bad = (why: string) => new StateError(file, `corrupted state file: ${why}`);
  if (typeof json !== 'object' || json === null || (json as { format?: unknown }).format !== FORMAT) throw bad(`not a ${FORMAT} file`);
  const list = (json as { approvals?: unknown }).approvals;
  if (!Array.isArray(list)) throw bad('no approvals list');
  return list.map((item: unknown, i) => {
    const record = item as Record<string, unknown>;
    const hex = (value: unknown, bytes: number | undefined, what: string) => {
      if (typeof value !== 'string' || !isLowerHexBytes(value) || (bytes !== undefined && value.length !== bytes * 2)) throw bad(`approval ${i}: bad ${what}`);
      return Buffer.from(value, 'hex');
    };
    if (typeof record !== 'object' || record === null) throw bad(`approval ${i} is not an object`);
    if (record.purpose !== 'read') throw bad(`approval ${i}: bad purpose`);
    if (typeof record.pcrs !== 'string' || typeof record.values !== 'object' || record.values === null) throw bad(`approval ${i}: bad pcrs/values`);
    return {
      purpose: record.purpose,
      policy: hex(record.policy, 32, 'policy'),
      signature: hex(record.signature, undefined, 'signature'),
      pcrs: record.pcrs,
      values: record.values as Record<string, string>,
    };
  });
}

export function serializeApprovals(approvals: Approval[]): string {
  const records = approvals.map((a) => ({
    purpose: a.purpose, policy: a.policy.toString('hex'), signature: a.signature.toString('hex'), pcrs: a.pcrs, values: a.values,
  }));
  return `${JSON.stringify({ format: FORMAT, approvals: records }, null, 2)}\n`;
}

/** Far more than any machine needs (a record is ~700 bytes); an attacker's huge file must not exhaust the initramfs. */
export const MAX_APPROVALS_BYTES = 1 << 20;

/**
 * Reads and parses the approvals. The file is opened without following a symlink and without blocking, must be a
 * regular file of at most MAX_APPROVALS_BYTES (checked on the fd), and is resolved inside the physical root when
 * the state directory lies under it (src/sys/untrusted-file.ts): a FIFO, a device or a huge file is refused
 * before it is read, never read to an end that does not come.
 */
export function readApprovals(stateDir: string): Approval[] {
  const file = approvalsPath(stateDir);
  let text: string;
  try {
    text = readUntrustedText(file, { maxBytes: MAX_APPROVALS_BYTES });
  } catch (error) {
    if (!(error instanceof UntrustedFileError)) throw error;
    if (error.kind === 'missing') throw new StateError(file, 'no approvals: the state directory was not provisioned (sealroot provision/approve)');
    throw new StateError(file, `unusable state file: ${error.reason}`);
  }
  return parseApprovals(text, file);
}

/**
 * Adds approvals (dropping exact duplicates), written atomically. Records with the same policy but another signature
 * are kept: the file is untrusted, and a record signed by some other key must not displace a valid one.
 */
export function addApprovals(stateDir: string, added: Approval[]): void {
  fs.mkdirSync(stateDir, { recursive: true, mode: 0o755 });
  const file = approvalsPath(stateDir);
  const existing = fs.existsSync(file) ? readApprovals(stateDir) : [];
  const kept = existing.filter((old) => !added.some((a) => a.purpose === old.purpose && a.policy.equals(old.policy) && a.signature.equals(old.signature)));
  const temporary = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(temporary, serializeApprovals([...kept, ...added]), { mode: 0o644 });
  fs.renameSync(temporary, file);
}
