// Command and response frames (Part 1 §18.2-18.10, Part 3 §4): header, handles, authorization area, parameters.
import { COMMAND_NAMES, TPM_RS_PW, TPM_ST_NO_SESSIONS, TPM_ST_SESSIONS, TPMA_SESSION_CONTINUE } from './constants.ts';
import { Reader, TpmFormatError, Writer } from './marshal.ts';

/** One entry of a command's authorization area (TPMS_AUTH_COMMAND). */
export interface AuthSession {
  handle: number;
  nonce: Buffer;
  attributes: number;
  hmac: Buffer;
}

/** The password session (TPM_RS_PW) with a plaintext authValue, empty by default (Part 1 §19.8.4). */
export function passwordSession(password: Buffer = Buffer.alloc(0)): AuthSession {
  return { handle: TPM_RS_PW, nonce: Buffer.alloc(0), attributes: 0, hmac: password };
}

/**
 * A policy session used for authorization. Without PolicyAuthValue/PolicyPassword the TPM checks no HMAC, so the
 * HMAC is empty; the session is unbound and unsalted (nothing secret crosses the bus: see README.md).
 */
export function policyAuth(handle: number): AuthSession {
  return { handle, nonce: Buffer.alloc(0), attributes: TPMA_SESSION_CONTINUE, hmac: Buffer.alloc(0) };
}

export function commandName(code: number): string {
  return COMMAND_NAMES.get(code) ?? `TPM command 0x${code.toString(16)}`;
}

export function buildCommand(code: number, handles: readonly number[], sessions: readonly AuthSession[] | undefined, parameters: Buffer): Buffer {
  const body = new Writer();
  for (const handle of handles) body.u32(handle);
  if (sessions !== undefined && sessions.length > 0) {
    const auth = new Writer();
    for (const session of sessions) auth.u32(session.handle).sized(session.nonce).u8(session.attributes).sized(session.hmac);
    const area = auth.finish();
    body.u32(area.length).bytes(area);
  }
  body.bytes(parameters);
  const rest = body.finish();
  const tag = sessions !== undefined && sessions.length > 0 ? TPM_ST_SESSIONS : TPM_ST_NO_SESSIONS;
  return new Writer().u16(tag).u32(10 + rest.length).u32(code).bytes(rest).finish();
}

export interface Response {
  rc: number;
  handles: number[];
  parameters: Buffer;
}

/** Splits a response; with rc != 0 the TPM sends only the 10-byte header. */
export function parseResponse(frame: Buffer, handleCount: number): Response {
  const reader = new Reader(frame, 'TPM response');
  const tag = reader.u16();
  const size = reader.u32();
  const rc = reader.u32();
  if (size !== frame.length) throw new TpmFormatError(`TPM response size field ${size} but ${frame.length} bytes received`);
  if (tag !== TPM_ST_NO_SESSIONS && tag !== TPM_ST_SESSIONS) throw new TpmFormatError(`TPM response tag 0x${tag.toString(16)}`);
  if (rc !== 0) return { rc, handles: [], parameters: Buffer.alloc(0) };
  const handles: number[] = [];
  for (let i = 0; i < handleCount; i++) handles.push(reader.u32());
  if (tag === TPM_ST_SESSIONS) {
    // The response authorization area follows the parameters; sealroot's sessions carry no HMAC key, so it is not checked.
    const parameterSize = reader.u32();
    return { rc, handles, parameters: reader.bytes(parameterSize) };
  }
  return { rc, handles, parameters: reader.bytes(reader.remaining) };
}
