// Mounts a verified composefs image: sealed memfd -> read-only loop device -> EROFS -> overlayfs with the
// objects directories as data-only lower layers (metacopy=on, redirect_dir=on, verity=require).
//
// Every piece is made detached and only the finished overlay is attached at `target`. The EROFS mount is the
// exception: Linux 6.12 refuses a detached mount fd for `lowerdir+` (EBADF; fd layers arrived in 6.13), so it is
// attached at a private directory under `workDir` while the overlay is created, then lazily unmounted: the
// overlay keeps its own reference to the layer (libcomposefs does the same). Any failure undoes everything, and
// the autoclear loop device goes away with the last reference.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from '../log.ts';
import { SysError } from '../errors.ts';
import { closeFd } from '../sys/io.ts';
import { MNT_DETACH, MOUNT_ATTR_NODEV, MOUNT_ATTR_RDONLY, moveMountTo, umount2 } from '../sys/mountapi.ts';
import { FsParamError, createDetachedMount } from './fs-context.ts';
import { attachReadOnlyLoop } from './loop-device.ts';
import { appendOverlayParams, legacyOverlayParams, type ComposefsOverlay, type FsParam, type VerityMode } from './overlay-options.ts';
import { UndoStack } from './undo.ts';

export type { VerityMode } from './overlay-options.ts';

export interface MountComposefsOptions {
  /** The sealed, verified image memfd (the caller keeps and closes it). */
  imageFd: number;
  objectDirs: string[];
  target: string;
  verity: VerityMode;
  /** From the image validator: mount EROFS with `noacl` unless the image carries POSIX ACLs. */
  hasAcls: boolean;
  log?: Logger;
  /**
   * A writable upper layer on the composefs overlay itself (ostree's root.transient; libcomposefs upperdir).
   * Not a second overlay stacked on top: overlayfs allows only two levels of stacking, and /etc may need one.
   */
  upper?: { upperdir: string; workdir: string; readonly?: boolean };
  /** `legacy` skips the `lowerdir+` attempt (tests of the fallback path; kernels known to lack it). Default auto. */
  overlayApi?: 'auto' | 'legacy';
  /** Where the EROFS layer is attached while the overlay is made (default /run/sealroot). */
  workDir?: string;
  /** Device directory holding loop-control and loopN (default /dev). */
  devDir?: string;
}

export interface MountedComposefs {
  target: string;
  /** e.g. /dev/loop3: read-only, autoclear, backed by the sealed memfd. */
  loopDevice: string;
  /** Which overlay interface the kernel took: `lowerdir+`/`datadir+` (>= 6.7) or the legacy `lowerdir=A::B`. */
  overlayApi: 'lowerdir+' | 'legacy';
  verity: VerityMode;
  /** Lazily unmounts the overlay (and with it the EROFS layer and the loop device). */
  unmount(): void;
}

export class MountError extends Error {
  readonly stage: 'loop' | 'erofs' | 'overlay' | 'attach';
  constructor(stage: MountError['stage'], message: string, cause: unknown) {
    super(message, { cause });
    this.name = 'MountError';
    this.stage = stage;
  }
}

function describe(error: unknown): string {
  if (error instanceof FsParamError || error instanceof SysError) return error.message;
  return error instanceof Error ? error.message : String(error);
}

/** `lowerdir+` unknown to the kernel: fsconfig fails EINVAL on that key (fs/overlayfs/params.c before 6.7). */
function appendUnsupported(error: unknown): boolean {
  return error instanceof FsParamError && error.sysError.code === 'EINVAL'
    && (error.param.startsWith('lowerdir+=') || error.param.startsWith('datadir+='));
}

export function mountComposefs(options: MountComposefsOptions): MountedComposefs {
  const { log } = options;
  const workDir = options.workDir ?? '/run/sealroot';
  if (options.objectDirs.length === 0) throw new MountError('overlay', 'no objects directory given', undefined);
  for (const dir of options.objectDirs) {
    // A missing data layer would only show as EIO on the first read: refuse it here, by name.
    let stat: fs.Stats;
    try {
      stat = fs.statSync(dir);
    } catch (error) {
      throw new MountError('overlay', `objects directory ${dir}: ${describe(error)}`, error);
    }
    if (!stat.isDirectory()) throw new MountError('overlay', `objects directory ${dir} is not a directory`, undefined);
  }
  const undo = new UndoStack();
  try {
    let loop;
    try {
      loop = attachReadOnlyLoop(options.imageFd, 'sealroot:composefs', 4096, options.devDir);
    } catch (error) {
      throw new MountError('loop', `cannot attach a loop device: ${describe(error)}`, error);
    }
    const loopFd = loop.fd;
    undo.push(`close ${loop.path}`, () => closeFd(loopFd));

    let erofsFd: number;
    try {
      const params: FsParam[] = [
        { kind: 'string', key: 'source', value: loop.path },
        { kind: 'flag', key: 'ro' }, // without it erofs fsmount fails EACCES on the read-only device
      ];
      if (!options.hasAcls) params.push({ kind: 'flag', key: 'noacl' });
      erofsFd = createDetachedMount('erofs', params, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV);
    } catch (error) {
      throw new MountError('erofs', `cannot mount the image (${loop.path}) as EROFS: ${describe(error)}`, error);
    }
    undo.push('close the EROFS mount', () => closeFd(erofsFd));

    fs.mkdirSync(workDir, { recursive: true, mode: 0o700 });
    const lowerDir = fs.mkdtempSync(path.join(workDir, 'erofs.'));
    let lowerExists = true;
    let lowerAttached = false;
    undo.push(`remove ${lowerDir}`, () => {
      if (lowerExists) fs.rmdirSync(lowerDir);
    });
    try {
      moveMountTo(erofsFd, lowerDir);
    } catch (error) {
      throw new MountError('erofs', `cannot attach the EROFS layer at ${lowerDir}: ${describe(error)}`, error);
    }
    lowerAttached = true;
    undo.push(`unmount ${lowerDir}`, () => {
      if (lowerAttached) umount2(lowerDir, MNT_DETACH);
    });

    const layers: ComposefsOverlay = { lower: lowerDir, data: options.objectDirs, verity: options.verity, upper: options.upper };
    // No nodev or nosuid: this is the root filesystem (device nodes and setuid binaries of the image must work).
    // With an upper, read-only only when asked (ostree's root.transient-ro: LCFS_MOUNT_FLAGS_READONLY with an upperdir).
    const overlayAttributes = options.upper === undefined || options.upper.readonly === true ? MOUNT_ATTR_RDONLY : 0;
    let overlayApi: MountedComposefs['overlayApi'] = 'lowerdir+';
    let overlayFd: number;
    try {
      try {
        if (options.overlayApi === 'legacy') throw new Error('the legacy form was asked for');
        overlayFd = createDetachedMount('overlay', appendOverlayParams(layers), overlayAttributes);
      } catch (error) {
        if (options.overlayApi !== 'legacy' && !appendUnsupported(error)) throw error;
        log?.notice(`overlayfs: ${describe(error)}: using the legacy lowerdir=IMG::OBJ form`);
        overlayApi = 'legacy';
        overlayFd = createDetachedMount('overlay', legacyOverlayParams(layers), overlayAttributes);
      }
    } catch (error) {
      throw new MountError('overlay', `cannot create the composefs overlay: ${describe(error)}`, error);
    }
    undo.push('close the overlay mount', () => closeFd(overlayFd));
    // The overlay holds its own reference to the EROFS layer: our attachment and handles are no longer needed.
    umount2(lowerDir, MNT_DETACH);
    lowerAttached = false;
    fs.rmdirSync(lowerDir);
    lowerExists = false;
    try {
      moveMountTo(overlayFd, options.target);
    } catch (error) {
      throw new MountError('attach', `cannot attach the composefs overlay at ${options.target}: ${describe(error)}`, error);
    }
    const target = options.target;
    undo.commit();
    closeFd(overlayFd);
    closeFd(erofsFd);
    closeFd(loopFd);
    log?.info(`composefs mounted at ${target}: ${loop.path} (read-only, autoclear) -> erofs -> overlay via ${overlayApi}, `
      + `verity=${options.verity}, data layers ${options.objectDirs.join(', ')}`
      + (options.upper === undefined ? '' : `, ${options.upper.readonly === true ? 'read-only mount of the' : 'writable'} upper ${options.upper.upperdir}`));
    return {
      target,
      loopDevice: loop.path,
      overlayApi,
      verity: options.verity,
      unmount: () => umount2(target, MNT_DETACH),
    };
  } catch (error) {
    undo.unwind(log);
    throw error;
  }
}
