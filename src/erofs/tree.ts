// The in-memory tree a composefs image describes, before overlay rewriting (what mkcomposefs reads from a
// directory or a dump file). Names and xattr names are byte strings held as latin1 JS strings: one char per
// byte, so `<` on them is the strcmp order libcomposefs sorts by, and any byte sequence round-trips.
import { S_IFCHR, S_IFDIR, S_IFMT, S_IFREG } from './format.ts';

export interface Xattr {
  /** The full name, e.g. `security.selinux`, as latin1 bytes. */
  name: string;
  value: Buffer;
}

export interface TreeNode {
  /** st_mode including the file type bits. */
  mode: number;
  uid: number;
  gid: number;
  mtimeSec: bigint;
  mtimeNsec: number;
  /** Regular files: content size; others are computed by the writer (symlink: target length). */
  size: bigint;
  /** Character and block devices: the dev_t in the kernel's 32-bit encoding (new_encode_dev). */
  rdev: number;
  xattrs: Xattr[];
  /** Directories: entries by name. The same TreeNode object under several names is a hard link. */
  children?: Map<string, TreeNode>;
  /** Symlinks: the target bytes. */
  target?: Buffer;
  /** Regular files stored inside the image (non-empty, at most INLINE_MAX bytes). */
  inline?: Buffer;
  /** Regular files stored as objects: the fs-verity digest of the content. */
  digest?: Buffer;
  /** Regular files stored as objects: the object path relative to the objects directory (`ab/cdef...`). */
  payload?: string;
  /** nlink when known from outside (dump files); the writer computes it for directories. */
  nlink?: number;
  /**
   * For a node with several names, the one that is not a hard link (a dump's line without '@'): the inode is
   * placed there. Without it, the first name in depth-first name order.
   */
  primary?: { parent: TreeNode; name: string };
}

/** Files up to this size live in the image (libcomposefs LCFS_RECOMMENDED_INLINE_CONTENT_MAX). */
export const INLINE_MAX = 64;

export const isDir = (node: TreeNode): boolean => (node.mode & S_IFMT) === S_IFDIR;
export const isRegular = (node: TreeNode): boolean => (node.mode & S_IFMT) === S_IFREG;
/** An overlayfs whiteout: a character device with device number 0/0. */
export const isWhiteout = (node: TreeNode): boolean => (node.mode & S_IFMT) === S_IFCHR && node.rdev === 0;

/** Byte order of latin1-held names (strcmp). */
export const compareNames = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export function sortedEntries(node: TreeNode): [string, TreeNode][] {
  return [...(node.children ?? new Map<string, TreeNode>()).entries()].sort(([a], [b]) => compareNames(a, b));
}

/** The object path for a digest: first byte in hex, '/', the rest in hex (libcomposefs digest_to_path). */
export function objectPath(digest: Buffer): string {
  const hex = digest.toString('hex');
  return `${hex.slice(0, 2)}/${hex.slice(2)}`;
}

export function getXattr(node: { xattrs: Xattr[] }, name: string): Buffer | undefined {
  return node.xattrs.find((xattr) => xattr.name === name)?.value;
}

/** Sets (replacing any value of the same name) an xattr. */
export function setXattr(node: { xattrs: Xattr[] }, name: string, value: Buffer): void {
  const existing = node.xattrs.findIndex((xattr) => xattr.name === name);
  if (existing >= 0) node.xattrs.splice(existing, 1);
  node.xattrs.push({ name, value });
}
