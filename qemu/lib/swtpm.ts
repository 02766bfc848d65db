// swtpm instances: on TCP for provisioning from the host (tpm2-tools TCTI syntax `swtpm:host=127.0.0.1,port=P`),
// and on a unix socket as the guest's TPM. The state directory keeps NV and seeds across instances; PCRs reset at
// each start (startup-clear), like a reboot.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { freePortPair } from '../../test/helpers/swtpm.ts';

export interface Swtpm {
  process: ChildProcess;
  /** TCTI for sealroot/tpm2-tools (TCP instances only). */
  tcti?: string;
  /** Control socket for QEMU's tpm-emulator (unix instances only). */
  socket?: string;
  stop(): Promise<void>;
}

async function waitFor(check: () => Promise<boolean> | boolean, what: string, child: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`swtpm exited (${child.exitCode}) before ${what}: ${stderr().trim()}`);
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`swtpm: timed out waiting for ${what}`);
}

function stopper(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('close', () => resolve());
      child.kill('SIGTERM');
    });
}

function connectable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

export async function startTcpSwtpm(stateDir: string): Promise<Swtpm> {
  fs.mkdirSync(stateDir, { recursive: true });
  const port = await freePortPair();
  let stderr = '';
  const child = spawn('swtpm', ['socket', '--tpm2', '--tpmstate', `dir=${stateDir}`, '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`,
    '--ctrl', `type=tcp,port=${port + 1},bindaddr=127.0.0.1`, '--flags', 'not-need-init,startup-clear'], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
  await waitFor(async () => (await connectable(port)) && (await connectable(port + 1)), 'its TCP ports', child, () => stderr);
  return { process: child, tcti: `swtpm:host=127.0.0.1,port=${port}`, stop: stopper(child) };
}

/** A swtpm for QEMU; --terminate ends it when QEMU closes the control connection. */
export async function startGuestSwtpm(stateDir: string): Promise<Swtpm> {
  fs.mkdirSync(stateDir, { recursive: true });
  // A unix socket's path is at most 107 bytes (sun_path); a run directory under a deep checkout exceeds it
  // ("Path for UnioIO socket is too long"), so the socket lives in a short directory of its own under /tmp.
  const socketDir = fs.mkdtempSync('/tmp/sealroot-swtpm-');
  const socket = path.join(socketDir, 'ctrl.sock');
  let stderr = '';
  const child = spawn('swtpm', ['socket', '--tpm2', '--tpmstate', `dir=${stateDir}`, '--ctrl', `type=unixio,path=${socket}`,
    '--flags', 'startup-clear', '--terminate'], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
  child.once('close', () => fs.rmSync(socketDir, { recursive: true, force: true }));
  await waitFor(() => fs.existsSync(socket), 'its control socket', child, () => stderr);
  return { process: child, socket, stop: stopper(child) };
}
