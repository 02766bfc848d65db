// Pure: the overlayfs parameters of a composefs mount, for the new mount API (one fsconfig call per key,
// `lowerdir+`/`datadir+`, Linux >= 6.7) and for the legacy single string (`lowerdir=IMG::OBJ`, data-only
// lower layers after `::`, Linux >= 6.5; `verity=` needs >= 6.6). See Documentation/filesystems/overlayfs.rst.

export type VerityMode = 'require' | 'off';

export interface ComposefsOverlay {
  /** Path of the attached EROFS mount (the metadata layer). */
  lower: string;
  /** Objects directories, each a data-only lower layer. */
  data: readonly string[];
  verity: VerityMode;
  /** A writable upper layer (root.transient): the overlay is then read-write. */
  upper?: { upperdir: string; workdir: string };
}

export type FsParam = { kind: 'string'; key: string; value: string } | { kind: 'flag'; key: string };

function base(options: ComposefsOverlay): FsParam[] {
  const params: FsParam[] = [
    { kind: 'string', key: 'source', value: 'composefs' },
    { kind: 'string', key: 'metacopy', value: 'on' },
    { kind: 'string', key: 'redirect_dir', value: 'on' },
  ];
  // verity=off is the kernel default; saying nothing keeps the legacy form valid on 6.5 kernels.
  if (options.verity === 'require') params.push({ kind: 'string', key: 'verity', value: 'require' });
  if (options.upper !== undefined) {
    params.push({ kind: 'string', key: 'upperdir', value: options.upper.upperdir });
    params.push({ kind: 'string', key: 'workdir', value: options.upper.workdir });
  }
  return params;
}

/** Parameters for the new API, each layer its own `lowerdir+` / `datadir+` call (no escaping needed). */
export function appendOverlayParams(options: ComposefsOverlay): FsParam[] {
  return [
    ...base(options),
    { kind: 'string', key: 'lowerdir+', value: options.lower },
    ...options.data.map((dir): FsParam => ({ kind: 'string', key: 'datadir+', value: dir })),
  ];
}

/**
 * Escapes a path for overlayfs's option parser: it splits mount data on ',' and layer lists on ':', and a
 * backslash makes the next character literal (fs/overlayfs/params.c ovl_next_opt / ovl_unescape).
 */
export function escapeOverlayPath(path: string): string {
  if (!path.includes('\\') && !path.includes(',') && !path.includes(':')) return path;
  return path.replace(/[\\,:]/g, (c) => `\\${c}`);
}

/** `IMG::OBJ1::OBJ2`: the metadata layer, then each data-only layer after a `::`. */
export function legacyLowerdir(options: ComposefsOverlay): string {
  return [options.lower, ...options.data].map(escapeOverlayPath).join('::');
}

/** Parameters for kernels without `lowerdir+`: the whole layer list in one `lowerdir` value. */
export function legacyOverlayParams(options: ComposefsOverlay): FsParam[] {
  return [...base(options), { kind: 'string', key: 'lowerdir', value: legacyLowerdir(options) }];
}

/** The same as one mount(2) data string (what `mount -t overlay -o ...` passes). */
export function legacyMountData(options: ComposefsOverlay): string {
  return legacyOverlayParams(options)
    .filter((param) => param.key !== 'source')
    .map((param) => (param.kind === 'flag' ? param.key : `${param.key}=${param.value}`))
    .join(',');
}
