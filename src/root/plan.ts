// What the root preparation will do, decided before anything is mounted (pure data).
import type { Digest } from '../verity/digest.ts';

/** How a directory of the new root (etc, var) is provided; paths are absolute. */
export type SubdirPlan =
  | { kind: 'none' }
  /** A writable bind mount of `source` over the directory. */
  | { kind: 'bind'; source: string }
  /** A persistent overlay over the directory of the image: upper and work in `state`. */
  | { kind: 'overlay'; state: string }
  /** An overlay with upper and work on tmpfs (gone at reboot) over `lower` (relative to the new root). */
  | { kind: 'transient'; lower: string };

export interface RootPlan {
  layout: 'ostree' | 'composefs';
  /** The physical root (where the image, objects and state live). */
  sysroot: string;
  image: string;
  objectDirs: string[];
  /** composefs layout: the digest the `composefs=` karg names (must equal the trusted digest). */
  namedDigest: Digest | undefined;
  /** ostree: the deployment directory; composefs: its state directory. */
  deployment: string;
  rootTransient: boolean;
  /** ostree's root.transient-ro: the root overlay (with its transient upper) is mounted read-only. */
  rootTransientReadonly: boolean;
  etc: SubdirPlan;
  var: SubdirPlan;
  /** Bind the physical root at <newroot>/sysroot read-only. */
  sysrootReadonly: boolean;
  /** Whether <newroot>/sysroot must exist (ostree) or may be missing (composefs-rs skips it on ENOENT). */
  sysrootBindRequired: boolean;
  /** ostree: write /run/ostree-booted. */
  writeOstreeBooted: boolean;
}

export class LayoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LayoutError';
  }
}
