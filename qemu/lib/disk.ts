// The guest's disks: a sample root tree made into composefs images by `sealroot mkimage`, laid out as a
// composefs-rs root (composefs/images, composefs/objects) on ext4 with the verity feature (`mkfs.ext4 -O verity -d`,
// no host mount needed). The host kernel has no fs-verity, so one "prepare" boot enables fs-verity on the objects of
// every disk variant at once (the images stay without it and take the loader's userspace path). The ostree
// scenarios boot deployments made by the ostree CLI on disks of their own (./ostree.ts), whose .ostree.cfs carries
// fs-verity as ostree gives it (the loader's kernel fs-verity path).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type LifecycleImage, type LifecycleInputs, layoutLifecycle, prepareLifecycle } from './lifecycle.ts';
import { PCR_SELECTION, pcrValues } from './guest.ts';
import { BUSYBOX, buildInitramfs, moduleLoadOrder } from './initramfs.ts';
import { CACHE, freshDir, pruneCache, ROOT, sealrootBinary, type Kernel } from './paths.ts';
import { boot } from './vm.ts';

export const HELLO = 'hello from the trusted image';
const VICTIM = 'usr/share/sealroot-test/victim.bin';
/**
 * The signed read approvals on the physical root (issue 14: not in the initramfs, whose PCR 9 measurement they
 * would change): for the stand-in boot chain's trusted PCR values; the dracut flows' boot.toml names this place.
 */
export const PHYSICAL_STATE_DIR = 'sealroot/tpm';
const PREPARE_LIST = '.sealroot-test-prepare';

export type DiskVariant = 'base' | 'compressed' | 'tampered-image' | 'truncated-image' | 'tampered-object' | 'object-without-verity' | 'missing-object' | 'forged' | 'lifecycle';
export const DISK_VARIANTS: readonly DiskVariant[] = ['base', 'compressed', 'tampered-image', 'truncated-image', 'tampered-object', 'object-without-verity', 'missing-object', 'forged', 'lifecycle'];

export interface Disks {
  files: Record<DiskVariant, string>;
  /** Digest of the trusted image (sha256:<hex>). */
  digest: string;
  /** Its size in bytes (signed with the digest into the TPM's trusted set). */
  imageSize: number;
  /** Digest of the attacker's image on the `forged` disk. */
  forgedDigest: string;
  /** The `lifecycle` disk's images (issue 11): A (the trusted image), B, C and the attacker's. */
  lifecycleDigests: Record<LifecycleImage, string>;
  /** md5 of victim.bin, as the guest prints it when the read succeeds. */
  victimMd5: string;
  /** The sample root as a plain ext4 root (no composefs, no sealroot): the reference boot of the benchmark. */
  plainRoot: string;
}

function run(command: string, args: string[]): string {
  return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** fs-verity digest as the reference tool computes it (userspace; works without kernel support). */
export function fsverityDigest(file: string): string {
  const out = run('fsverity', ['digest', '--hash-alg=sha256', file]);
  return /^(sha256:[0-9a-f]{64}) /.exec(out)?.[1] ?? (() => { throw new Error(`fsverity digest ${file}: ${out}`); })();
}

/** The sample root: busybox, a /sbin/init that prints the checks, a file to compare, a victim object. */
export function writeSampleTree(dir: string, hello: string): void {
  freshDir(dir);
  for (const sub of ['bin', 'sbin', 'etc', 'proc', 'sys', 'dev', 'run', 'tmp', 'var', 'sysroot', 'usr/share/sealroot-test']) {
    fs.mkdirSync(path.join(dir, sub), { recursive: true });
  }
  fs.copyFileSync(BUSYBOX, path.join(dir, 'bin/busybox'));
  fs.chmodSync(path.join(dir, 'bin/busybox'), 0o755);
  for (const applet of run(BUSYBOX, ['--list']).split('\n').filter((name) => /^[a-z0-9_.[-]+$/.test(name) && name !== 'busybox')) {
    fs.symlinkSync('busybox', path.join(dir, 'bin', applet));
  }
  fs.copyFileSync(path.join(ROOT, 'qemu/guest/root-init'), path.join(dir, 'sbin/init'));
  fs.chmodSync(path.join(dir, 'sbin/init'), 0o755);
  fs.writeFileSync(path.join(dir, 'etc/os-release'), 'NAME="sealroot sample root"\nID=sealroot-sample\nVERSION_ID=1\n');
  fs.writeFileSync(path.join(dir, 'etc/hostname'), 'sample\n');
  fs.writeFileSync(path.join(dir, 'usr/share/sealroot-test/hello.txt'), `${hello}\n`);
  // Larger than any inline limit, so it is an external object (8 KiB of deterministic bytes).
  const victim = Buffer.alloc(8192);
  for (let i = 0; i < victim.length; i++) victim[i] = (i * 131 + 7) & 0xff;
  fs.writeFileSync(path.join(dir, VICTIM), victim);
}

/** `sealroot mkimage --digest-store=OBJECTS SOURCE IMAGE`; the digest it prints must equal fsverity's. */
export function mkimage(source: string, image: string, objects: string): string {
  fs.mkdirSync(objects, { recursive: true });
  const out = run(sealrootBinary(), ['mkimage', `--digest-store=${objects}`, '--print-digest', source, image]);
  const reference = fsverityDigest(image);
  const printed = /([0-9a-f]{64})/.exec(out)?.[1];
  if (printed === undefined || `sha256:${printed}` !== reference) {
    throw new Error(`sealroot mkimage printed ${JSON.stringify(out.trim())} but fsverity digest of ${image} is ${reference}`);
  }
  return reference;
}

function objectPath(objects: string, file: string): string {
  const hex = fsverityDigest(file).slice('sha256:'.length);
  return path.join(objects, hex.slice(0, 2), hex.slice(2));
}

function fingerprint(): string {
  const hash = createHash('sha256');
  hash.update(path.basename(sealrootBinary()));
  for (const file of [BUSYBOX, path.join(ROOT, 'qemu/guest/root-init'), path.join(ROOT, 'qemu/guest/prepare-init'), path.join(import.meta.dirname, 'lifecycle.ts'), import.meta.filename]) {
    const stat = fs.statSync(file);
    hash.update(`${file}:${stat.size}:${stat.mtimeMs}`);
  }
  return hash.digest('hex').slice(0, 16);
}

/** Builds the source tree of one disk: the composefs-rs layout of the trusted image, plus the variant's change. */
function layoutDisk(dir: string, variant: DiskVariant, trusted: { image: string; digest: string; objects: string; tree: string }, forged: { image: string; digest: string; objects: string }, lifecycle: LifecycleInputs): string[] {
  freshDir(dir);
  // The physical root's own skeleton (as `ostree admin init-fs` makes it); dracut's shell flow refuses a root
  // without proc, sys and dev ("no proper rootfs layout").
  for (const sub of ['boot', 'dev', 'proc', 'run', 'sys', 'tmp']) fs.mkdirSync(path.join(dir, sub));
  const hex = trusted.digest.slice('sha256:'.length);
  const images = path.join(dir, 'composefs/images');
  fs.mkdirSync(images, { recursive: true });
  fs.cpSync(trusted.objects, path.join(dir, 'composefs/objects'), { recursive: true });
  fs.copyFileSync(trusted.image, path.join(images, hex));
  // composefs-rs deployment state (/etc as an overlay, /var bound: setup-root-conf defaults).
  for (const sub of ['etc', 'var']) fs.mkdirSync(path.join(dir, 'state/deploy', hex, sub), { recursive: true });
  run(sealrootBinary(), ['approve', '--signing-key', path.join(ROOT, 'keys/test-policy-key.pem'), '--pcrs', PCR_SELECTION,
    ...pcrValues('trusted').flatMap((value) => ['--pcr-value', value]), '--state', path.join(dir, PHYSICAL_STATE_DIR)]);

  const victimObject = path.relative(trusted.objects, objectPath(trusted.objects, path.join(trusted.tree, VICTIM)));
  const victimObjects = [path.join('composefs/objects', victimObject)];
  const noVerity: string[] = [];
  const flip = (file: string, offset: number): void => {
    const fd = fs.openSync(file, 'r+');
    const byte = Buffer.alloc(1);
    fs.readSync(fd, byte, 0, 1, offset);
    byte[0] ^= 0x01;
    fs.writeSync(fd, byte, 0, 1, offset);
    fs.closeSync(fd);
  };
  switch (variant) {
    case 'base':
      break;
    case 'compressed':
      // The image file holds zstd-compressed bytes (the loader knows them by their magic); the trusted digest is
      // that of the decompressed image.
      run('zstd', ['-q', '-19', '-f', trusted.image, '-o', path.join(images, hex)]);
      break;
    case 'tampered-image':
      // One bit flipped in the middle of the image: the digest check must refuse it before the kernel parses it.
      flip(path.join(images, hex), Math.floor(fs.statSync(path.join(images, hex)).size / 2));
      break;
    case 'truncated-image':
      fs.truncateSync(path.join(images, hex), Math.floor(fs.statSync(path.join(images, hex)).size / 2));
      break;
    case 'tampered-object':
      // The object's content changes; fs-verity is then enabled on the new content, so its digest no longer
      // matches the one the image records (overlay: "has the wrong fs-verity digest").
      for (const object of victimObjects) flip(path.join(dir, object), 100);
      break;
    case 'object-without-verity':
      noVerity.push(...victimObjects);
      break;
    case 'missing-object':
      for (const object of victimObjects) fs.rmSync(path.join(dir, object));
      break;
    case 'lifecycle':
      layoutLifecycle(dir, lifecycle);
      break;
    case 'forged': {
      // The attacker's image and objects, for the digest it provisions from a rogue boot.
      fs.copyFileSync(forged.image, path.join(images, forged.digest.slice('sha256:'.length)));
      for (const sub of ['etc', 'var']) fs.mkdirSync(path.join(dir, 'state/deploy', forged.digest.slice('sha256:'.length), sub), { recursive: true });
      fs.cpSync(forged.objects, path.join(dir, 'composefs/objects'), { recursive: true, force: false, errorOnExist: false });
      break;
    }
  }
  fs.writeFileSync(path.join(dir, PREPARE_LIST), ['composefs/objects', ...noVerity.map((object) => `!${object}`)].join('\n') + '\n');
  return noVerity;
}

function prepareInitramfs(kernel: Kernel): string {
  return buildInitramfs({
    name: 'prepare',
    kernel,
    binaries: [{ source: run('sh', ['-c', 'command -v fsverity']).trim(), target: 'usr/bin/fsverity' }],
    modules: moduleLoadOrder(kernel, ['virtio_blk']),
    files: { 'etc/disk-count': { content: `${DISK_VARIANTS.length}\n` } },
    init: fs.readFileSync(path.join(ROOT, 'qemu/guest/prepare-init'), 'utf8'),
    compress: ['zstd', '-q', '-3'],
  });
}

/** Builds every disk variant (cached until sealroot, busybox or this harness changes). */
export async function buildDisks(kernel: Kernel, log: (line: string) => void): Promise<Disks> {
  const key = fingerprint();
  const dir = path.join(CACHE, 'disks', key);
  const manifest = path.join(dir, 'disks.json');
  if (fs.existsSync(manifest)) return JSON.parse(fs.readFileSync(manifest, 'utf8')) as Disks;
  pruneCache(path.join(CACHE, 'disks'), (name) => name === key);
  const work = freshDir(path.join(CACHE, 'disks', `${key}.work`));

  const tree = path.join(work, 'tree');
  writeSampleTree(tree, HELLO);
  const trusted = { tree, objects: path.join(work, 'objects'), image: path.join(work, 'trusted.cfs'), digest: '' };
  trusted.digest = mkimage(tree, trusted.image, trusted.objects);
  const evilTree = path.join(work, 'evil-tree');
  writeSampleTree(evilTree, 'hello from the ATTACKER');
  const forged = { objects: path.join(work, 'evil-objects'), image: path.join(work, 'forged.cfs'), digest: '' };
  forged.digest = mkimage(evilTree, forged.image, forged.objects);
  const lifecycle = prepareLifecycle(work, trusted, forged, mkimage, path.join(ROOT, 'keys/test-policy-key.pem'));
  const victimMd5 = createHash('md5').update(fs.readFileSync(path.join(tree, VICTIM))).digest('hex');

  const files = {} as Record<DiskVariant, string>;
  for (const variant of DISK_VARIANTS) {
    const source = path.join(work, `src-${variant}`);
    layoutDisk(source, variant, trusted, forged, lifecycle);
    const image = path.join(work, `${variant}.img`);
    run('mkfs.ext4', ['-q', '-F', '-b', '4096', '-O', 'verity', '-L', 'sealroot-test', '-E', 'root_owner=0:0', '-d', source, image, '64M']);
    files[variant] = image;
  }
  // One boot enables fs-verity on the objects of all disks (vda, vdb, ... in DISK_VARIANTS order).
  const result = await boot({
    kernel,
    initrd: prepareInitramfs(kernel),
    drives: DISK_VARIANTS.map((variant) => ({ file: files[variant] })),
    append: 'quiet',
    timeoutSeconds: 120,
  });
  const prepared = result.lines.filter((line) => line.startsWith('@@ PREPARED '));
  if (prepared.length !== DISK_VARIANTS.length || !result.lines.includes('@@ END')) {
    throw new Error(`the prepare boot did not prepare every disk:\n${result.lines.filter((line) => line.startsWith('@@') || /error|fail/i.test(line)).join('\n')}`);
  }
  for (const line of prepared) log(line.slice(3));

  const final = { files: {} as Record<DiskVariant, string>, digest: trusted.digest, imageSize: fs.statSync(trusted.image).size, forgedDigest: forged.digest,
    lifecycleDigests: Object.fromEntries(Object.entries(lifecycle.images).map(([name, files]) => [name, files.digest])) as Record<LifecycleImage, string>, victimMd5, plainRoot: path.join(dir, 'plain-root.img') };
  fs.mkdirSync(dir, { recursive: true });
  run('mkfs.ext4', ['-q', '-F', '-b', '4096', '-L', 'sample-root', '-E', 'root_owner=0:0', '-d', tree, final.plainRoot, '64M']);
  for (const variant of DISK_VARIANTS) {
    final.files[variant] = path.join(dir, `${variant}.img`);
    fs.renameSync(files[variant], final.files[variant]);
  }
  fs.writeFileSync(manifest, JSON.stringify(final, null, 2));
  fs.rmSync(work, { recursive: true, force: true });
  return final;
}
