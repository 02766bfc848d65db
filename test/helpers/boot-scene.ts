// A host boot test's scene: a directory holding the physical root, RUN, the initramfs and boot.toml.
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface Scene {
  dir: string;
  sysroot: string;
  run: string;
  initramfs: string;
  /** boot.toml: the caller writes it. */
  config: string;
  cmdline: string;
}

/** The scene's paths under `dir`, with the physical root, RUN and the initramfs made (empty). */
export function sceneDirs(dir: string): Omit<Scene, 'cmdline'> {
  const base = { dir, sysroot: path.join(dir, 'sysroot'), run: path.join(dir, 'run'), initramfs: path.join(dir, 'initramfs'), config: path.join(dir, 'boot.toml') };
  for (const d of [base.sysroot, base.run, base.initramfs]) fs.mkdirSync(d, { recursive: true });
  return base;
}
