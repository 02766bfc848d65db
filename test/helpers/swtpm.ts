// swtpm on loopback TCP for the integration tier: a state directory (NV and seeds survive restarts, PCRs do not),
// bounded waits, and every instance killed when the test process exits.
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { requireTools } from './tools.ts';

export interface Swtpm {
  /** `swtpm:host=127.0.0.1,port=P` (sealroot and tpm2-tools). */
  tcti: string;
  port: number;
  stateDir: string;
  /** Stops and starts again on the same state: a reboot (PCRs reset, NV kept). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A port P such that P and P+1 (swtpm's control channel) are both free now. */
export async function freePortPair(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 40000);
    if (await portFree(port) && await portFree(port + 1)) return port;
  }
  throw new Error('no free loopback port pair for swtpm');
}

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function launch(stateDir: string, port: number, flags: string): Promise<ChildProcess> {
  const log = path.join(stateDir, '..', `swtpm-${port}.log`);
  const child = spawn('swtpm', ['socket', '--tpm2', '--tpmstate', `dir=${stateDir}`,
    '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`, '--ctrl', `type=tcp,port=${port + 1},bindaddr=127.0.0.1`,
    '--flags', flags, '--log', `file=${log}`], { stdio: 'ignore' });
  running.add(child);
  child.once('exit', () => running.delete(child));
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`swtpm exited with ${child.exitCode} (log: ${log})`);
    if (await connects(port)) return child;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  child.kill('SIGKILL');
  throw new Error(`swtpm did not listen on 127.0.0.1:${port} within 10 s (log: ${log})`);
}

async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

/**
 * Starts swtpm on a fresh (or given) state directory, powered on and started (TPM2_Startup(CLEAR)) unless `flags`
 * says otherwise (`not-need-init`: powered on, not started).
 */
export async function startSwtpm(stateDir?: string, options: { flags?: string } = {}): Promise<Swtpm> {
  const flags = options.flags ?? 'startup-clear';
  requireTools('swtpm');
  // A state directory made here is removed by stop(); a given one belongs to the caller.
  const madeHere = stateDir === undefined ? fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-swtpm-')) : undefined;
  const dir = stateDir ?? path.join(madeHere!, 'state');
  fs.mkdirSync(dir, { recursive: true });
  let port = await freePortPair();
  let child = await launch(dir, port, flags);
  const instance: Swtpm = {
    tcti: `swtpm:host=127.0.0.1,port=${port}`,
    port,
    stateDir: dir,
    async restart() {
      await terminate(child);
      // The same port keeps TCTI strings valid; it was ours a moment ago, but wait for it to be released.
      const deadline = Date.now() + 5000;
      while (!(await portFree(port) && await portFree(port + 1))) {
        if (Date.now() > deadline) {
          port = await freePortPair();
          instance.port = port;
          instance.tcti = `swtpm:host=127.0.0.1,port=${port}`;
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      child = await launch(dir, port, flags);
    },
    async stop() {
      await terminate(child);
      if (madeHere !== undefined) fs.rmSync(madeHere, { recursive: true, force: true });
    },
  };
  return instance;
}
