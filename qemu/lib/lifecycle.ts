// The trust lifecycle scenarios of issue 11 (upgrade, rollback, retire, replay-refused, killed-boot-no-write):
// several boots of one machine whose TPM state carries over from boot to boot, and a disk that holds three
// versions of the sample image (A = the trusted image at version 1, B = version 2, C = version 3), the update files
// the key holder signed for them (`sealroot trust sign`, test key), and an attacker's image with an update signed
// by the attacker's own key. What the booted system does between boots runs in the guest (qemu/guest/trust-action).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { sealrootBinary } from './paths.ts';

export type LifecycleImage = 'A' | 'B' | 'C' | 'forged';
export const LIFECYCLE_IMAGES: readonly LifecycleImage[] = ['A', 'B', 'C', 'forged'];
/** The versions the key holder signed; the attacker's image claims a higher one. */
export const LIFECYCLE_VERSIONS: Readonly<Record<LifecycleImage, number>> = { A: 1, B: 2, C: 3, forged: 99 };

export interface LifecycleImageFiles {
  image: string;
  digest: string;
  objects: string;
  update: string;
}

export interface LifecycleInputs {
  images: Record<LifecycleImage, LifecycleImageFiles>;
  /** The attacker's key pair (its private half is what a disk writer may have). */
  attackerKey: string;
  attackerPublic: string;
}

export interface LifecycleBoot {
  image: LifecycleImage;
  pcr: 'trusted' | 'rogue';
  /** What runs after `sealroot boot` (qemu/guest/trust-action): sync, apply:X[,Y], attack. */
  action?: string;
  /** Run the action after a failed boot too: the shell whoever broke the boot would get. */
  actionAlways?: boolean;
  /** SIGKILL sealroot as soon as it has capped the PCR. */
  kill?: boolean;
  /** A verified root of this trusted version, a stop whose last line matches, or anything (only `lines` count). */
  expect: { kind: 'boot'; version: number } | { kind: 'stop'; reason: RegExp } | { kind: 'any' };
  /** Console lines that must appear (each pattern matched by some line). */
  lines?: readonly RegExp[];
}

/** Three versions of the sample tree (A is the trusted tree itself), images and objects, and the signed updates. */
export function prepareLifecycle(
  work: string, trusted: { tree: string; image: string; digest: string; objects: string }, forged: { image: string; digest: string; objects: string },
  mkimage: (source: string, image: string, objects: string) => string, keyPrivate: string,
): LifecycleInputs {
  const dir = path.join(work, 'lifecycle');
  fs.mkdirSync(dir, { recursive: true });
  const attackerKey = path.join(dir, 'attacker.pem');
  const attackerPublic = path.join(dir, 'attacker.pub.pem');
  execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', attackerKey], { stdio: 'ignore' });
  execFileSync('openssl', ['pkey', '-in', attackerKey, '-pubout', '-out', attackerPublic], { stdio: 'ignore' });
  const made = (name: 'B' | 'C'): { image: string; digest: string; objects: string } => {
    const tree = path.join(dir, `tree-${name}`);
    fs.cpSync(trusted.tree, tree, { recursive: true });
    fs.writeFileSync(path.join(tree, 'usr/share/sealroot-test/version.txt'), `${name}\n`);
    const image = path.join(dir, `${name}.cfs`);
    const objects = path.join(dir, `objects-${name}`);
    return { image, objects, digest: mkimage(tree, image, objects) };
  };
  const sources = { A: trusted, B: made('B'), C: made('C'), forged };
  const images = {} as Record<LifecycleImage, LifecycleImageFiles>;
  for (const name of LIFECYCLE_IMAGES) {
    const source = sources[name];
    const update = path.join(dir, `update-${name}.trust`);
    // `sealroot trust sign`, as the key holder runs it when it builds the image: the image is validated, its digest
    // checked and its size recorded. The attacker signs with its own key.
    execFileSync(sealrootBinary(), ['trust', 'sign', '--signing-key', name === 'forged' ? attackerKey : keyPrivate, '--digest', source.digest,
      '--image', source.image, '--version', String(LIFECYCLE_VERSIONS[name]), '--out', update], { stdio: ['ignore', 'ignore', 'pipe'] });
    images[name] = { ...source, update };
  }
  return { images, attackerKey, attackerPublic };
}

/**
 * The physical root of the `lifecycle` disk, on top of the base layout (which holds A): B, C and the attacker's
 * image with their objects and deployment state, each update beside its image (`<image>.trust`, where
 * `sealroot trust sync` looks), boot entries for A and B, and the harness's own copies under sealroot-test/.
 */
export function layoutLifecycle(dir: string, inputs: LifecycleInputs): void {
  const images = path.join(dir, 'composefs/images');
  const kit = path.join(dir, 'sealroot-test');
  const entries = path.join(dir, 'boot/loader/entries');
  fs.mkdirSync(kit, { recursive: true });
  fs.mkdirSync(entries, { recursive: true });
  for (const name of LIFECYCLE_IMAGES) {
    const { image, digest, objects, update } = inputs.images[name];
    const hex = digest.slice('sha256:'.length);
    if (name !== 'A') {
      fs.copyFileSync(image, path.join(images, hex));
      fs.cpSync(objects, path.join(dir, 'composefs/objects'), { recursive: true, force: false, errorOnExist: false });
      for (const sub of ['etc', 'var']) fs.mkdirSync(path.join(dir, 'state/deploy', hex, sub), { recursive: true });
    }
    fs.copyFileSync(update, path.join(images, `${hex}.trust`));
    fs.copyFileSync(update, path.join(kit, `update-${name}.trust`));
  }
  for (const name of ['A', 'B'] as const) {
    fs.writeFileSync(path.join(entries, `sealroot-${name}.conf`), `title sealroot sample ${name}\nversion ${LIFECYCLE_VERSIONS[name]}\noptions composefs=${inputs.images[name].digest.slice('sha256:'.length)} rw\n`);
  }
  fs.copyFileSync(inputs.attackerKey, path.join(kit, 'attacker.pem'));
  fs.copyFileSync(inputs.attackerPublic, path.join(kit, 'attacker.pub.pem'));
  fs.writeFileSync(path.join(kit, 'forged.digest'), `${inputs.images.forged.digest}\n`);
}

/** The kernel arguments of one lifecycle boot (busybox initramfs, qemu/guest/init). */
export function lifecycleKernelArgs(scenario: string, boot: LifecycleBoot, digests: Record<LifecycleImage, string>): string {
  const hex = digests[boot.image].slice('sha256:'.length);
  const action = boot.action === undefined ? '' : ` test.action=${boot.action} test.action-always=${boot.actionAlways === true ? 1 : 0}`;
  return `loglevel=5 composefs=${hex} test.scenario=${scenario} test.pcr=${boot.pcr} test.precap=0${action}${boot.kill === true ? ' test.kill=1' : ''}`;
}

/** Pure: the lines a lifecycle boot must show beyond the boot's own verdict: the version booted and `lines`. */
export function judgeLifecycleLines(boot: LifecycleBoot, lines: readonly string[]): string | undefined {
  if (boot.expect.kind === 'boot') {
    const ready = lines.find((line) => /^sealroot: root ready at /.test(line));
    if (ready === undefined || !ready.includes(`(trusted version ${boot.expect.version})`)) return `not booted as trusted version ${boot.expect.version}: ${ready ?? 'no root-ready line'}`;
    const version = lines.find((line) => line.startsWith('@@ VERSION '));
    const expected = boot.image === 'A' ? undefined : `@@ VERSION ${boot.image}`;
    if (version !== expected) return `the root's version file says ${version ?? 'nothing (image A)'}, expected ${expected ?? 'nothing (image A)'}`;
  }
  for (const pattern of boot.lines ?? []) {
    if (!lines.some((line) => pattern.test(line))) return `no console line matches ${pattern}`;
  }
  return undefined;
}
