// How commands reach a TPM, chosen with a tpm2-tools TCTI string:
//   device[:PATH]                 the kernel's character device (default /dev/tpmrm0, the resource manager)
//   swtpm[:host=H,port=P]         swtpm's TCP server: raw command frames, one connection per command (as tss2-tcti-swtpm)
//   mssim[:host=H,port=P]         the TCG/Microsoft simulator protocol: TPM_SEND_COMMAND (8), locality, size, frame
import * as fs from 'node:fs';
import type * as Net from 'node:net';

/**
 * node:net, loaded when a TCP TPM (swtpm, mssim) is used: a boot through /dev/tpmrm0 never loads it (each builtin
 * module costs its start ~1 ms natively, far more under emulation).
 */
function netModule(): typeof Net {
  return process.getBuiltinModule('node:net');
}

export type Tcti =
  | { kind: 'device'; path: string }
  | { kind: 'swtpm' | 'mssim'; host: string; port: number };

export const DEFAULT_TCTI = 'device:/dev/tpmrm0';
/** The largest response a TPM sends is a few kB (TPM_PT_MAX_RESPONSE_SIZE); anything larger is a protocol error. */
const MAX_RESPONSE = 1 << 16;

export class TctiSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TctiSyntaxError';
  }
}

/** No TPM answers at the place the TCTI names (missing device, connection refused, timeout). */
export class TpmUnavailableError extends Error {
  readonly code: string | undefined;

  constructor(message: string, code?: string) {
    super(message);
    this.name = 'TpmUnavailableError';
    this.code = code;
  }
}

export function parseTcti(text: string): Tcti {
  const colon = text.indexOf(':');
  const name = colon < 0 ? text : text.slice(0, colon);
  const conf = colon < 0 ? '' : text.slice(colon + 1);
  if (name === 'device') {
    const path = conf === '' ? '/dev/tpmrm0' : conf;
    if (!path.startsWith('/')) throw new TctiSyntaxError(`device TCTI needs an absolute path: '${text}'`);
    return { kind: 'device', path };
  }
  if (name === 'swtpm' || name === 'mssim') {
    let host = 'localhost';
    let port = 2321;
    for (const pair of conf === '' ? [] : conf.split(',')) {
      const [key, value, extra] = pair.split('=');
      if (value === undefined || extra !== undefined) throw new TctiSyntaxError(`bad ${name} TCTI option '${pair}' in '${text}' (expected host=H,port=P)`);
      if (key === 'host') host = value;
      else if (key === 'port') {
        port = Number(value);
        if (!Number.isInteger(port) || port < 1 || port > 65534) throw new TctiSyntaxError(`bad port '${value}' in '${text}'`);
      } else throw new TctiSyntaxError(`unknown ${name} TCTI option '${key}' in '${text}'`);
    }
    return { kind: name, host, port };
  }
  throw new TctiSyntaxError(`unknown TCTI '${name}' in '${text}' (device:PATH, swtpm:host=H,port=P, mssim:host=H,port=P)`);
}

export function formatTcti(tcti: Tcti): string {
  return tcti.kind === 'device' ? `device:${tcti.path}` : `${tcti.kind}:host=${tcti.host},port=${tcti.port}`;
}

export interface Transport {
  readonly tcti: Tcti;
  transmit(command: Buffer): Promise<Buffer>;
  close(): Promise<void>;
}

export async function openTransport(tcti: Tcti, timeoutMs: number): Promise<Transport> {
  if (tcti.kind === 'device') return DeviceTransport.open(tcti);
  const transport = new SocketTransport(tcti, timeoutMs);
  await transport.probe();
  return transport;
}

/**
 * /dev/tpm0 and /dev/tpmrm0: write one command, read one response (the driver returns it whole). The kernel enforces
 * the TPM's own command timeouts (TPM PTP spec), so no second timer here. With tpmrm0, transient objects and sessions
 * are flushed when the file is closed, even if sealroot dies.
 *
 * Through fs's callback API on libuv's threads (a read waits for the TPM's answer), not fs.promises: its module is
 * loaded on first use, ~1.5 ms natively and ~35 ms of the boot under emulation (QEMU TCG), for three calls.
 */
class DeviceTransport implements Transport {
  readonly tcti: Tcti;
  private readonly fd: number;

  private constructor(tcti: Tcti, fd: number) {
    this.tcti = tcti;
    this.fd = fd;
  }

  static async open(tcti: Tcti & { kind: 'device' }): Promise<DeviceTransport> {
    try {
      return new DeviceTransport(tcti, await new Promise<number>((resolve, reject) => {
        fs.open(tcti.path, fs.constants.O_RDWR, (error, fd) => (error === null ? resolve(fd) : reject(error)));
      }));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'does not exist (no TPM, or its driver is not loaded)'
        : code === 'EBUSY' ? 'is busy (another process holds /dev/tpm0; use /dev/tpmrm0)' : `cannot be opened: ${code ?? (error as Error).message}`;
      throw new TpmUnavailableError(`no TPM: ${tcti.path} ${why}`, code);
    }
  }

  async transmit(command: Buffer): Promise<Buffer> {
    const bytesWritten = await new Promise<number>((resolve, reject) => {
      fs.write(this.fd, command, 0, command.length, null, (error, written) => (error === null ? resolve(written) : reject(error)));
    });
    if (bytesWritten !== command.length) throw new TpmUnavailableError(`${this.tcti.kind}: short write to the TPM (${bytesWritten} of ${command.length})`);
    // The driver hands the whole response to one read; keep reading anyway until the header's size is there.
    const chunks: Buffer[] = [];
    let total = 0;
    let expected: number | undefined;
    while (expected === undefined || total < expected) {
      const buffer = Buffer.alloc(MAX_RESPONSE);
      const bytesRead = await new Promise<number>((resolve, reject) => {
        fs.read(this.fd, buffer, 0, buffer.length, null, (error, read) => (error === null ? resolve(read) : reject(error)));
      });
      if (bytesRead === 0) throw new TpmUnavailableError(`${formatTcti(this.tcti)}: the TPM ended a response after ${total} bytes`);
      chunks.push(buffer.subarray(0, bytesRead));
      total += bytesRead;
      if (expected === undefined && total >= 6) {
        expected = Buffer.concat(chunks).readUInt32BE(2);
        if (expected < 10 || expected > MAX_RESPONSE) throw new TpmUnavailableError(`${formatTcti(this.tcti)}: response size field ${expected}`);
      }
    }
    return Buffer.concat(chunks);
  }

  close(): Promise<void> {
    return new Promise((resolve, reject) => fs.close(this.fd, (error) => (error === null ? resolve() : reject(error))));
  }
}

/** swtpm and mssim on TCP: a fresh connection per command, each bounded by the timeout. */
class SocketTransport implements Transport {
  readonly tcti: Tcti & { kind: 'swtpm' | 'mssim' };
  private readonly timeoutMs: number;

  constructor(tcti: Tcti & { kind: 'swtpm' | 'mssim' }, timeoutMs: number) {
    this.tcti = tcti;
    this.timeoutMs = timeoutMs;
  }

  /** Connects once, so that a missing simulator is reported when the TPM is opened, not at the first command. */
  probe(): Promise<void> {
    const { host, port, kind } = this.tcti;
    return new Promise((resolve, reject) => {
      const socket = netModule().connect({ host, port });
      socket.setTimeout(this.timeoutMs, () => {
        socket.destroy();
        reject(new TpmUnavailableError(`no TPM at ${kind}:host=${host},port=${port}: no connection within ${this.timeoutMs} ms`, 'ETIMEDOUT'));
      });
      socket.on('connect', () => {
        socket.destroy();
        resolve();
      });
      socket.on('error', (error: NodeJS.ErrnoException) => reject(unavailable(this.tcti, error)));
    });
  }

  transmit(command: Buffer): Promise<Buffer> {
    const { host, port, kind } = this.tcti;
    const where = `${kind}:host=${host},port=${port}`;
    const frame = kind === 'swtpm' ? command : Buffer.concat([mssimHeader(command.length), command]);
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let received = 0;
      let settled = false;
      const finish = (error: Error | undefined, response?: Buffer) => {
        if (settled) return;
        settled = true;
        socket.destroy();
        if (error !== undefined) reject(error);
        else resolve(response!);
      };
      const socket = netModule().connect({ host, port });
      socket.setTimeout(this.timeoutMs, () => finish(new TpmUnavailableError(`no answer from the TPM at ${where} within ${this.timeoutMs} ms`, 'ETIMEDOUT')));
      socket.on('connect', () => socket.write(frame));
      socket.on('error', (error: NodeJS.ErrnoException) => finish(unavailable(this.tcti, error)));
      socket.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        received += chunk.length;
        const data = Buffer.concat(chunks);
        const expected = expectedLength(kind, data);
        if (expected === undefined) return;
        if (expected > MAX_RESPONSE) finish(new TpmUnavailableError(`${where}: response of ${expected} bytes announced`));
        else if (received >= expected) finish(undefined, kind === 'swtpm' ? data.subarray(0, expected) : data.subarray(4, expected - 4));
      });
      socket.on('end', () => finish(new TpmUnavailableError(`${where} closed the connection after ${received} bytes of a response`)));
    });
  }

  async close(): Promise<void> {}
}

function unavailable(tcti: Tcti & { kind: 'swtpm' | 'mssim' }, error: NodeJS.ErrnoException): TpmUnavailableError {
  const why = error.code === 'ECONNREFUSED' ? 'connection refused (is swtpm running?)' : error.code ?? error.message;
  return new TpmUnavailableError(`no TPM at ${tcti.kind}:host=${tcti.host},port=${tcti.port}: ${why}`, error.code);
}

const MSSIM_SEND_COMMAND = 8;

function mssimHeader(length: number): Buffer {
  const header = Buffer.alloc(9);
  header.writeUInt32BE(MSSIM_SEND_COMMAND, 0);
  header[4] = 0; // locality 0
  header.writeUInt32BE(length, 5);
  return header;
}

/** Total bytes of the reply once its length is known: swtpm sends the bare frame; mssim wraps it in size + frame + u32 ack. */
function expectedLength(kind: 'swtpm' | 'mssim', data: Buffer): number | undefined {
  if (kind === 'swtpm') return data.length >= 6 ? data.readUInt32BE(2) : undefined;
  return data.length >= 4 ? 4 + data.readUInt32BE(0) + 4 : undefined;
}
