// The state directory: signed approvals of PCR policies, one JSON file. Everything in it is public and
// attacker-writable; a record is worth nothing without a valid signature by K_pcr, which the TPM checks
// (TPM2_VerifySignature). Losing the file is a denial of service, never a forgery.
import * as fs from 'node:fs';
import * as path from 'node:path';

export const APPROVALS_FILE = 'approvals.json';
const FORMAT = 'sealroot-tpm-approvals/1';

export type Purpose = 'read' | 'write';

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
      if (typeof value !== 'string' || !/^([0-9a-f]{2})+$/.test(value) || (bytes !== undefined && value.length !== bytes * 2)) throw bad(`approval ${i}: bad ${what}`);
      return Buffer.from(value, 'hex');
    };
    if (typeof record !== 'object' || record === null) throw bad(`approval ${i} is not an object`);
    if (record.purpose !== 'read' && record.purpose !== 'write') throw bad(`approval ${i}: bad purpose`);
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

export function readApprovals(stateDir: string): Approval[] {
  const file = approvalsPath(stateDir);
  let text: string;
  try {
    const size = fs.statSync(file).size;
    if (size > MAX_APPROVALS_BYTES) throw new StateError(file, `corrupted state file: ${size} bytes (at most ${MAX_APPROVALS_BYTES})`);
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if (error instanceof StateError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new StateError(file, code === 'ENOENT' ? 'no approvals: the state directory was not provisioned (sealroot provision/approve)' : `cannot read: ${code}`);
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
