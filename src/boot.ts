// The boot sequence sealroot runs in the initramfs, top to bottom. It fails closed: any failure stops it with
// one line naming the step, undoes every mount it made, and the root is never mounted unverified.
//
//   config + /proc/cmdline -> /proc, /sys, /dev -> physical root -> locate image and state (layout) ->
//   trusted digest (TPM; PCR capped right after, on every path; when composefs= names the digest, the image is
//   copied into a sealed memfd and hashed meanwhile) -> membership and signed size -> EROFS validated (unsigned
//   digests, or when asked) while the other threads hash it -> fs-verity digest checked -> composefs mounted
//   (verity=require) -> new root assembled and put at /sysroot (these two steps holding the CPU, so that PID 1 reads
//   the mount table once: ./boot/mount-priority.ts) ->
//   hand over (exit 0 for dracut/systemd; as PID 1 with --switch-root: switch root and exec init).
//
// The step implementations are passed in (BootSteps) so the host tests can run this sequence without a TPM;
// `sealroot boot` always passes defaultBootSteps().
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from './log.ts';
import { parseBootConfig, type BootConfig } from './config/boot-config.ts';
import { kargValue, parseCmdline, type Cmdline } from './config/cmdline.ts';
import type { DigestContext, TrustedCandidate } from './boot/trust-source.ts';
import { chooseInit, switchRoot } from './boot/handover.ts';
import { mountKernelFilesystems } from './boot/kernel-fs.ts';
import { isMountPoint } from './boot/mountinfo.ts';
import { holdCpuForMounts } from './boot/mount-priority.ts';
import { mountPhysicalRoot } from './boot/physical-root.ts';
import { oneLine, StepError, SysError } from './errors.ts';
import type { ImageSummary } from './erofs/validate.ts';
import { copyImage, PARALLEL_THRESHOLD, type ImageCopy, type LoadImageOptions } from './image/load.ts';
import { mountComposefs, type MountComposefsOptions, type MountedComposefs } from './mount/composefs.ts';
import { UndoStack } from './mount/undo.ts';
import { assembleRoot, replaceSysroot, transientDirs } from './root/assemble.ts';
import { planRoot } from './root/layout.ts';
import { openImage, openObjectsDir, relabel, removeUpTo, withPathLabels, type OpenedImage } from './root/confined-open.ts';
import { embeddedImagePath, openEmbeddedImage } from './root/embedded-image.ts';
import { checkProfile } from './root/profile.ts';
import { ConfinedRoot, fdPath, UntrustedPathError } from './sys/confined-root.ts';
import { readUntrustedText } from './sys/untrusted-file.ts';
import type { RootPlan } from './root/plan.ts';
import { msSinceStart } from './sys/clock.ts';
import { closeFd } from './sys/io.ts';
import { MNT_DETACH, mount, MS_PRIVATE, MS_REC, umount2 } from './sys/mountapi.ts';
import { digestsEqual, formatDigest, type Digest } from './verity/digest.ts';
import { defaultWorkerCount, HashPool } from './verity/pool.ts';
import { offloadsNatively, sizeThreadPool } from './verity/ranges.ts';
import type { CapEvent } from './trust/boot-read.ts';

export interface BootSteps {
  /** The trusted images (the TPM's set, newest first). */
  trustedImages(context: DigestContext): Promise<readonly TrustedCandidate[]>;
  /** 'digest-read': the cap right after the read; 'boot-failed': on top of it when the boot fails. */
  capPcr(context: DigestContext, event: CapEvent): Promise<void>;
  copyImage(options: LoadImageOptions): Promise<ImageCopy>;
  validateImage(image: Uint8Array): ImageSummary | Promise<ImageSummary>;
  mountComposefs(options: MountComposefsOptions): MountedComposefs;
}

/**
 * The real steps: the trusted set from the TPM (or the karg, only if the configuration allows it). The TPM's side
 * (the TPM client, the policy) is loaded when the read starts: its loading then runs while libuv's threads copy the
 * image, not before the copy can start. It loads no node:crypto (src/crypto/primitives.ts).
 */
export function defaultBootSteps(): BootSteps {
  const trustSource = () => import('./boot/trust-source.ts');
  return {
    trustedImages: async (context) => (await trustSource()).configuredTrustedImages(context),
    capPcr: async (context, event) => (await trustSource()).configuredCapPcr(context, event),
    copyImage,
    // Loaded only for an image validated at boot (./erofs/validate.ts: the reader, the format's tables).
    validateImage: async (image) => (await import('./erofs/validate.ts')).validateImage(image),
    mountComposefs,
  };
}

export interface BootOptions {
  configPath: string;
  /** The kernel command line; read from /proc/cmdline when not given. */
  cmdline?: string;
  /** Check that init exists in the new root before handing over (PID 1 --switch-root). */
  switchRoot?: boolean;
  /** tmpfs for the staging mount point, transient layers and /run/ostree-booted (default /run). */
  runDir?: string;
  /** Where prepare-root.conf and setup-root-conf.toml are looked up (default /, the initramfs). */
  initramfsRoot?: string;
  /**
   * Mount `root=` at the sysroot when nothing is mounted there (sealroot as PID 1 in a minimal initramfs).
   * Default false: under dracut or systemd the sysroot is mounted before sealroot runs.
   */
  mountPhysicalRoot?: boolean;
  /** Aborted by the CLI on SIGTERM, SIGINT or SIGHUP: the boot stops through its failure path (undo, cap). */
  signal?: AbortSignal;
  /** Make / recursively private first, as ostree-prepare-root does (shared mounts cannot be moved). Default true. */
  makeRootPrivate?: boolean;
  log: Logger;
}

export interface BootResult {
  sysroot: string;
  plan: RootPlan;
  digest: Digest;
  /** The trusted version the image was signed as (undefined for the development karg). */
  version: number | undefined;
  loopDevice: string;
  overlayApi: MountedComposefs['overlayApi'];
  init: string | undefined;
  initArgs: readonly string[];
  /** Wall time of each step, in order. */
  timings: { step: string; ms: number }[];
}

/**
 * The images this boot may mount: the one composefs= names, which must be in the set, or (ostree) every member.
 */
function chooseCandidates(trusted: readonly TrustedCandidate[], named: Digest | undefined): TrustedCandidate[] {
  if (trusted.length === 0) throw new StepError('trusted-image', 'the trusted set is empty');
  if (named === undefined) return [...trusted];
  const member = trusted.find((candidate) => digestsEqual(candidate.digest, named));
  if (member === undefined) {
    const set = trusted.map((candidate) => `${candidate.version === undefined ? '' : `version ${candidate.version} `}${formatDigest(candidate.digest)}`).join(', ');
    throw new StepError('trusted-image', `composefs= names ${formatDigest(named)}, which is not in the trusted set (${set}): an image that was never trusted, or one retired by a newer update`);
  }
  return [member];
}

/** The copy's bound: the configured maximum, and the largest signed size when every candidate has one. */
function largestAllowed(candidates: readonly TrustedCandidate[], configured: number | undefined): number | undefined {
  const sizes = candidates.map((candidate) => candidate.size);
  if (sizes.some((size) => size === undefined)) return configured;
  const largest = Math.max(...(sizes as number[]));
  return configured === undefined ? largest : Math.min(largest, configured);
}

/** The boot's stop signal (SIGTERM, SIGINT, SIGHUP: src/cli/boot.ts) and, for the steps to race, its abort. */
interface Stop {
  signal: AbortSignal;
  /** Rejects with the signal's reason when it aborts. */
  aborted: Promise<never>;
}

/**
 * One listener on the signal for the whole boot: an EventTarget listener added and removed around each step cost
 * ~0.25 ms natively for the boot's steps, ~20 ms under emulation (QEMU TCG).
 */
function stopOf(signal: AbortSignal): Stop {
  const aborted = new Promise<never>((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
  // Observed by each step's race (and the copy's stop); not an unhandled rejection when no step is running.
  aborted.catch(() => undefined);
  return { signal, aborted };
}

/**
 * Runs `run`; when the stop signal aborts first, rejects at once with StepError(step, 'interrupted by SIG...') so
 * that the failure path (undo, cap, boot-failed) runs. Work already in flight (a TPM command, the hashing) is
 * abandoned, not awaited; a synchronous step always runs to its end first.
 */
function untilAborted<T>(name: string, stop: Stop | undefined, run: () => T | Promise<T>): Promise<T> {
  const interrupted = (reason: unknown) => new StepError(name, `interrupted by ${String(reason)}`);
  if (stop?.signal.aborted === true) return Promise.reject(interrupted(stop.signal.reason));
  const work = (async () => run())();
  if (stop === undefined) return work;
  return Promise.race([work, stop.aborted.catch((reason: unknown) => {
    throw interrupted(reason);
  })]);
}

/** The boot configuration: a trusted file of the initramfs, still read bounded and only if it is a regular file. */
export const MAX_BOOT_CONFIG_BYTES = 256 * 1024;

/** Runs `run` to the end; value() then returns its result or throws its error. */
async function settle<T>(run: () => Promise<T>): Promise<{ value: () => T }> {
  try {
    const result = await run();
    return { value: () => result };
  } catch (error) {
    return {
      value: () => {
        throw error;
      },
    };
  }
}

/** Turns anything a step throws into StepError(step, ...): one line naming the step and the reason. */
function asStepError(step: string, error: unknown): StepError {
  if (error instanceof StepError) return error;
  if (error instanceof UntrustedPathError) return new StepError(step, error.reason, { path: error.path, cause: error.cause });
  if (error instanceof SysError) return new StepError(step, 'system call failed', { path: error.path, cause: error });
  return new StepError(step, oneLine(error));
}

export async function boot(options: BootOptions, steps: BootSteps = defaultBootSteps()): Promise<BootResult> {
  /** /proc/self/fd/N handed to the loader and overlayfs -> the path on the disk, for the one line and the log. */
  const fdLabels = new Map<string, string>();
  const log = withPathLabels(options.log, fdLabels);
  const runDir = options.runDir ?? '/run';
  sizeThreadPool();
  // Counted from the process's start: what Node and module loading took before this.
  const timings: BootResult['timings'] = [{ step: 'process-start', ms: msSinceStart() }];
  const undo = new UndoStack();
  const stop = options.signal === undefined ? undefined : stopOf(options.signal);
  const step = async <T>(name: string, run: () => T | Promise<T>, interruptible = true): Promise<T> => {
    const started = msSinceStart();
    try {
      return await (interruptible ? untilAborted(name, stop, run) : run());
    } catch (error) {
      throw relabel(asStepError(name, error), fdLabels);
    } finally {
      timings.push({ step: name, ms: msSinceStart() - started });
    }
  };

  let digestContext: DigestContext | undefined;
  let pool: HashPool | undefined;
  let poolClosed: Promise<void> | undefined;
  let capped = false;
  // Without a readable configuration (or command line), still cap with the defaults: fail closed.
  // The configuration as soon as it is read: an early failure caps the configured PCR through the configured TCTI.
  let configRead: BootConfig | undefined;
  let physical: ConfinedRoot | undefined;
  let openedImage: OpenedImage | undefined;
  /** The copy started before the TPM's answer, until the boot takes it (then it is verified or abandoned there). */
  let earlyCopy: Promise<{ value: () => ImageCopy }> | undefined;
  // Stops a copy still under way when the boot fails (the TPM refused): the failure is recorded without waiting
  // for the rest of an image up to its bound.
  const copyStop = new AbortController();
  // A stop signal stops it too.
  stop?.aborted.catch((reason: unknown) => copyStop.abort(reason));
  const objectFds: number[] = [];
  // The mount steps' hold on the CPU (./boot/mount-priority.ts), given back after them or on a failure.
  let releaseCpu: (() => void) | undefined;
  const capContext = (): DigestContext => digestContext ?? { config: configRead ?? parseBootConfig(''), cmdline: parseCmdline(''), log };
  const cap = async (): Promise<void> => {
    if (capped) return;
    capped = true;
    // Without a readable configuration (or command line), still cap with the defaults: fail closed.
    // Not interruptible: a signal must never skip the cap.
    await step('cap-pcr', () => steps.capPcr(capContext(), 'digest-read'), false);
  };

  try {
    // First the configuration (a file in the initramfs), the kernel filesystems and the command line.
    const config: BootConfig = await step('config', () => parseBootConfig(readUntrustedText(options.configPath, { maxBytes: MAX_BOOT_CONFIG_BYTES, under: null, followLast: true })));
    configRead = config;
    await step('kernel-filesystems', () => mountKernelFilesystems(log));
    const cmdline: Cmdline = await step('cmdline', () => parseCmdline(options.cmdline ?? fs.readFileSync('/proc/cmdline', 'utf8')));
    const context: DigestContext = { config, cmdline, log };
    digestContext = context;
    const sysroot = config.root.sysroot;

    if (options.makeRootPrivate ?? true) await step('private-mounts', () => mount(null, '/', null, MS_REC | MS_PRIVATE, null));

    const sysrootWasMounted = await step('physical-root', () => {
      const mounted = fs.existsSync(sysroot) && isMountPoint(sysroot);
      if (options.mountPhysicalRoot === true && mountPhysicalRoot(sysroot, cmdline, mounted, log)) undo.push(`unmount ${sysroot}`, () => umount2(sysroot, MNT_DETACH));
      return mounted || isMountPoint(sysroot);
    });

    // From here every path taken from the disk is resolved inside the physical root (openat2 RESOLVE_IN_ROOT).
    const confined = await step('locate-root', () => ConfinedRoot.open(sysroot));
    physical = confined;
    const plan = await step('locate-root', () => planRoot(config.root.layout, confined, cmdline, options.initramfsRoot));
    await step('locate-root', () => checkProfile(config.root.profile, plan));
    log.info(`layout ${plan.layout}: image ${plan.image}, objects ${plan.objectDirs.join(', ')}`);

    // The image, opened confined (O_PATH) and checked on the fd; the loader reopens exactly this file through
    // /proc/self/fd. A failure to open it is reported by the copy step, after the TPM read and the cap.
    // root.image: the image is a file of the initramfs instead (the objects and state stay on the physical root).
    const embedded = config.root.image === undefined ? undefined
      : await step('locate-root', () => embeddedImagePath(config.root.image!, options.initramfsRoot ?? '/', sysroot));
    if (embedded !== undefined) log.notice(`locate-root: the image is the initramfs's ${embedded} (root.image), not ${plan.image}`);
    const imageFile = embedded === undefined ? openImage(confined, plan.image) : openEmbeddedImage(embedded);
    openedImage = imageFile;
    if (imageFile.fdPath !== undefined) fdLabels.set(imageFile.fdPath, embedded ?? plan.image);
    const imageSize = imageFile.size;
    // The other CPUs hash too: on libuv's threads through the shim (src/verity/ranges.ts), or else on worker threads
    // for a large image, started now because each takes tens of ms to boot. (On one CPU: all on this thread.)
    pool = imageSize >= PARALLEL_THRESHOLD && defaultWorkerCount() > 0 && !offloadsNatively() ? new HashPool() : undefined;

    // composefs= names the image's digest: copying and hashing it needs nothing from the TPM, so the copy runs while
    // the TPM answers (on one CPU too: the TPM's time is spent in the TPM). What only the TPM knows is checked before
    // the digest is compared and anything is mounted: the named digest's membership in the signed set
    // (trusted-image) and its signed size (copy-image). Until then this copy is bounded, like the development
    // karg's, by the configured maximum and the memory left (src/image/memory.ts), not by the signed size.
    const copyOptions = (expected: Digest[], maxSize: number | undefined, expectedSize: number | undefined): LoadImageOptions => ({
      path: imageFile.path(), expected, maxSize, expectedSize, log, pool, memory: { unswappable: config.memory.unswappable },
      signal: copyStop.signal,
    });

    // The trusted digest, then the PCR cap at once. A failed read is capped too (in the catch below, which reports
    // the read's failure, not the cap's); a failed cap after a good read fails the boot. The TPM is asked first: the
    // copy's start (the memfd, its mappings) runs while it answers.
    const reading = step('trusted-digest', () => steps.trustedImages(context));
    earlyCopy = plan.namedDigest === undefined ? undefined : settle(() => steps.copyImage(copyOptions([plan.namedDigest!], config.root.maxImageSize, undefined)));
    const trusted = await reading;
    await cap();
    // composefs= names the image: it must be a member of the set. ostree names a deployment: its image may be any
    // member, and the digest computed over the sealed copy decides which.
    const candidates = await step('trusted-image', () => chooseCandidates(trusted, plan.namedDigest));
    const maxSize = largestAllowed(candidates, config.root.maxImageSize);
    // One trusted image with its signed size: nothing else is copied (several: maxSize is the largest of them).
    const signedSize = candidates.length === 1 ? candidates[0]!.size : undefined;

    // The image into a sealed memfd; the hash workers are still at it while the EROFS is validated on this thread
    // (the sealed bytes cannot change), then this thread hashes what is left and the digest is compared. An image
    // that is not the trusted one is reported as such, even when it is malformed too. With the early copy, this
    // step's time is what the boot still waited for it after the TPM's answer.
    const copy = await step('copy-image', async () => {
      if (earlyCopy === undefined) return steps.copyImage(copyOptions(candidates.map((candidate) => candidate.digest), maxSize, signedSize));
      const copied = (await earlyCopy).value();
      earlyCopy = undefined;
      // The configured maximum bounded this copy already; what the TPM adds is the signed size.
      if (signedSize !== undefined && copied.size !== signedSize) {
        await copied.abandon();
        throw new StepError('copy-image', `the ${copied.compressed ? 'decompressed ' : ''}image is ${copied.size} bytes, the trusted image is ${signedSize}`, { path: imageFile.path() });
      }
      return copied;
    });
    // The strict EROFS validation guards the kernel's parser from an attacker's bytes. An image of the TPM's signed
    // set is the key holder's bytes (its digest is checked below before anything is mounted), validated once when
    // its trust was granted (trust sign --image, trust sync, provision --image): the boot validates it again only
    // when the configuration asks. An unsigned digest (the development karg) is always validated.
    const signed = candidates.every((candidate) => candidate.version !== undefined);
    const validation = config.root.validateImage === 'always' || !signed
      ? await settle(() => step('validate-image', () => steps.validateImage(copy.bytes)))
      : undefined;
    if (validation === undefined) log.info('validate-image: not repeated: the image must match the signed set, validated when signed ([root] validate-image = "always" to repeat it)');
    const image = await step('verify-image', () => copy.verify());
    const digest = image.digest;
    const version = candidates.find((candidate) => digestsEqual(candidate.digest, digest))?.version;
    // The workers are done: let them wind down while the image is mounted.
    poolClosed = pool?.close();
    pool = undefined;
    let mounted: MountedComposefs;
    const staging = path.join(runDir, 'sealroot/newroot');
    releaseCpu = holdCpuForMounts(log);
    try {
      const summary = validation?.value();

      mounted = await step('mount-composefs', () => {
        // Every directory made here goes on failure, RUN/sealroot too (rmdir: only when empty, never what is mounted).
        const made = fs.mkdirSync(staging, { recursive: true, mode: 0o755 });
        undo.push(`remove ${made ?? staging}`, () => removeUpTo(staging, made ?? staging));
        for (const dir of plan.objectDirs) {
          const fd = openObjectsDir(confined, dir);
          objectFds.push(fd);
          fdLabels.set(fdPath(fd), dir);
        }
        const result = steps.mountComposefs({
          imageFd: image.fd, objectDirs: objectFds.map(fdPath), target: staging, verity: 'require', hasAcls: summary?.hasAcls ?? true, log,
          workDir: path.join(runDir, 'sealroot'),
          upper: plan.rootTransient ? { ...transientDirs(runDir, 'root', undo), readonly: plan.rootTransientReadonly } : undefined,
        });
        undo.push(`unmount the composefs root (${staging})`, () => result.unmount());
        return result;
      });
    } finally {
      closeFd(image.fd); // the loop device holds its own reference
    }

    const init = await step('prepare-root', () => {
      assembleRoot({ plan, staging, runDir, undo, verity: mounted.verity, log });
      const found = options.switchRoot === true ? chooseInit(staging, kargValue(cmdline, 'init')) : undefined;
      replaceSysroot(staging, sysroot, sysrootWasMounted, undo);
      fs.rmdirSync(staging);
      return found;
    });
    releaseCpu();
    releaseCpu = undefined;

    await step('stop-hash-workers', () => poolClosed);
    for (const fd of objectFds.splice(0)) closeFd(fd);
    imageFile.close();
    confined.close();
    undo.commit();
    log.notice(`root ready at ${sysroot}: ${plan.layout} image ${formatDigest(digest)}${version === undefined ? '' : ` (trusted version ${version})`} verified, `
      + `composefs via ${mounted.loopDevice} (${mounted.overlayApi}, verity=${mounted.verity})`);
    return {
      sysroot, plan, digest, version, loopDevice: mounted.loopDevice, overlayApi: mounted.overlayApi, init, initArgs: cmdline.initArgs, timings,
    };
  } catch (error) {
    releaseCpu?.();
    // A copy still under way when the boot failed (the TPM refused, a signal): it is stopped, ends with the ranges
    // in flight, and is closed before the image's fd; its own outcome is moot beside the failure reported.
    copyStop.abort(new Error('the boot failed'));
    if (earlyCopy !== undefined) {
      try {
        await (await earlyCopy).value().abandon();
      } catch (copyError) {
        log.info(`also: the copy started before the TPM's answer: ${oneLine(copyError)}`);
      }
    }
    for (const fd of objectFds.splice(0)) closeFd(fd);
    openedImage?.close();
    physical?.close();
    try {
      await (poolClosed ?? pool?.close());
    } catch (poolError) {
      log.error(`also: stopping the hash workers: ${oneLine(poolError)}`);
    }
    undo.unwind(log);
    try {
      await cap();
    } catch (capError) {
      log.error(`also: ${oneLine(capError)}`);
    }
    // After the cap, the PCRs of a trusted boot match the *write* approvals: whatever runs after this failure (an
    // emergency shell) must not be able to provision a digest. One more, distinct extend voids every approval.
    try {
      // Not through step(): a signal that interrupted the boot must not skip this either.
      await steps.capPcr(capContext(), 'boot-failed');
    } catch (voidError) {
      log.error(`also: ${oneLine(voidError)}`);
    }
    throw error;
  }
}

/** As PID 1: make the prepared root / and exec its init. Never returns. */
export function handOver(result: BootResult, log: Logger): never {
  if (result.init === undefined) throw new StepError('switch-root', 'no init chosen (boot ran without switchRoot)');
  return switchRoot(result.sysroot, result.init, result.initArgs, log);
}
