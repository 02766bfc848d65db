// The TPM side of the scenarios, done on the host against swtpm over TCP: the trusted machine provisions the
// trusted digest in its trusted (measured) state; the attacker of forged-digest then provisions its own digest
// from a rogue boot, on a copy of that TPM and with the same sealroot state directory.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PCR_SELECTION, pcrExtendArgs, pcrValues } from './guest.ts';
import { CACHE, freshDir, pruneCache, ROOT, sealrootBinary } from './paths.ts';

/** TEST keys from keys/: the private half signs approvals on the "vendor" side; the public half goes into the initramfs. */
export const POLICY_KEY_PRIVATE = path.join(ROOT, 'keys/test-policy-key.pem');
export const POLICY_KEY_PUBLIC = path.join(ROOT, 'keys/test-policy-key.pub.pem');
import { startTcpSwtpm } from './swtpm.ts';
import type { Disks } from './disk.ts';

/** One TPM + sealroot state pair: `swtpm` is the swtpm state dir, `sealroot` the `--state` dir. */
export interface TpmState {
  swtpm: string;
  sealroot: string;
}

export interface Provisioned {
  trusted: TpmState;
  forged: TpmState;
  /** What the attacker's provisioning printed and its exit status (the attack may be refused right there). */
  attack: { status: number | null; output: string };
}

function fingerprint(disks: Disks): string {
  return createHash('sha256').update(`${disks.digest}:${disks.forgedDigest}:${path.basename(sealrootBinary())}:${PCR_SELECTION}`).digest('hex').slice(0, 16);
}

async function withSwtpm<T>(state: string, action: (tcti: string) => T): Promise<T> {
  const swtpm = await startTcpSwtpm(state);
  try {
    return action(swtpm.tcti!);
  } finally {
    await swtpm.stop();
  }
}

function extend(tcti: string, state: 'trusted' | 'rogue'): void {
  // tpm2-tools, not sealroot: the state sealroot is checked against is set by an independent client.
  execFileSync('tpm2_pcrextend', ['-T', tcti, ...pcrExtendArgs(state)], { stdio: ['ignore', 'ignore', 'pipe'] });
}

function provision(tcti: string, digest: string, size: number, stateDir: string, pcrValueArgs: string[], signingKey: boolean): { status: number | null; output: string } {
  const result = spawnSync(sealrootBinary(), ['provision', '--tpm', tcti, '--digest', digest, '--size', String(size), '--pcrs', PCR_SELECTION, '--state', stateDir,
    '--policy-key', POLICY_KEY_PUBLIC, ...(signingKey ? ['--signing-key', POLICY_KEY_PRIVATE] : []),
    ...pcrValueArgs.flatMap((value) => ['--pcr-value', value])], { encoding: 'utf8' });
  return { status: result.status, output: `${result.stdout ?? ''}${result.stderr ?? ''}`.trim() };
}

const NV_INDEX = '0x01000e01';

function tool(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  return `${command} ${result.status === 0 ? 'ok' : `exit ${result.status}: ${(result.stderr ?? '').trim().split('\n').at(-1)}`}`;
}

/**
 * The raw TPM path of the threat model: with the (empty) owner auth, undefine sealroot's NV index, define one with
 * the same handle that the attacker can write by plain auth, and write the attacker's digest. Only the agent's
 * check of the index name can tell.
 */
function rawNvAttack(tcti: string, digest: string): string {
  const bytes = Buffer.from(digest.slice('sha256:'.length), 'hex');
  const file = path.join(CACHE, 'forged-digest.bin');
  fs.writeFileSync(file, bytes);
  return [
    tool('tpm2_nvundefine', ['-T', tcti, '-C', 'o', NV_INDEX]),
    tool('tpm2_nvdefine', ['-T', tcti, '-C', 'o', '-s', String(bytes.length), '-a', 'ownerread|authread|authwrite', NV_INDEX]),
    tool('tpm2_nvwrite', ['-T', tcti, '-C', NV_INDEX, '-i', file, NV_INDEX]),
  ].join('; ');
}

export async function provisionTpms(disks: Disks): Promise<Provisioned> {
  const dir = path.join(CACHE, 'provision', fingerprint(disks));
  const manifest = path.join(dir, 'provisioned.json');
  if (fs.existsSync(manifest)) return JSON.parse(fs.readFileSync(manifest, 'utf8')) as Provisioned;
  pruneCache(path.dirname(dir), (name) => name === path.basename(dir));
  const work = freshDir(`${dir}.work`);
  const trusted = { swtpm: path.join(work, 'trusted/swtpm'), sealroot: path.join(work, 'trusted/sealroot') };
  fs.mkdirSync(trusted.sealroot, { recursive: true });
  await withSwtpm(trusted.swtpm, (tcti) => {
    extend(tcti, 'trusted');
    const result = provision(tcti, disks.digest, disks.imageSize, trusted.sealroot, [], true);
    if (result.status !== 0) throw new Error(`sealroot provision (trusted state) failed: ${result.output}`);
  });

  const forged = { swtpm: path.join(work, 'forged/swtpm'), sealroot: path.join(work, 'forged/sealroot') };
  fs.cpSync(trusted.swtpm, forged.swtpm, { recursive: true });
  fs.cpSync(trusted.sealroot, forged.sealroot, { recursive: true });
  const attack = await withSwtpm(forged.swtpm, (tcti) => {
    extend(tcti, 'rogue');
    // The attacker knows the trusted PCR values (they are no secret) and predicts them for the next boot, but has
    // no private policy key. First sealroot's own provisioning, then the raw NV path.
    const attempt = provision(tcti, disks.forgedDigest, disks.imageSize, forged.sealroot, pcrValues('trusted'), false);
    return { status: attempt.status, output: `sealroot provision: ${attempt.output.split('\n').at(-1)}; then ${rawNvAttack(tcti, disks.forgedDigest)}` };
  });

  fs.rmSync(dir, { recursive: true, force: true });
  const final: Provisioned = {
    trusted: { swtpm: path.join(dir, 'trusted/swtpm'), sealroot: path.join(dir, 'trusted/sealroot') },
    forged: { swtpm: path.join(dir, 'forged/swtpm'), sealroot: path.join(dir, 'forged/sealroot') },
    attack,
  };
  fs.renameSync(work, dir);
  fs.writeFileSync(manifest, JSON.stringify(final, null, 2));
  return final;
}

/** A small ext4 image holding a sealroot state dir: the guest mounts it at /etc/sealroot/tpm. */
export function stateDisk(stateDir: string, out: string): string {
  execFileSync('mkfs.ext4', ['-q', '-F', '-E', 'root_owner=0:0', '-d', stateDir, out, '4M']);
  return out;
}
