// Reads a directory tree from disk into a TreeNode tree, as mkcomposefs does (lcfs_build + content digests):
// lstat, readlink, every xattr, content of small files inline, larger files hashed (fs-verity) and, when asked,
// copied into an objects store. Hard links (same st_dev/st_ino) become one node under several names (unless
// asked not to, as mkcomposefs 1.0.8 does).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { StepError, SysError } from '../errors.ts';
import { enableVerity } from '../sys/verity.ts';
import { getXattr, listXattrs, syncFilesystem } from '../sys/xattr.ts';
import type { HashAlgorithm } from '../verity/digest.ts';
import { FS_VERITY_ALGORITHM_IDS, FsVerityHasher } from '../verity/merkle.ts';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from './format.ts';
import { INLINE_MAX, objectPath, type TreeNode } from './tree.ts';

const READ_CHUNK = 1 << 20;
const NS = 1_000_000_000n;
const USER_PREFIX = Buffer.from('user.');

export interface ReadTreeOptions {
  algorithm: HashAlgorithm;
  /** Copy the content of files stored as objects here, at `XX/<rest of the digest>`. */
  digestStore?: string;
  /**
   * Keep hard links (default): names of one inode (st_dev, st_ino) are one node. false: every name is its own
   * inode with nlink 1, as mkcomposefs 1.0.8 does with a directory source (composefs issue #444).
   */
  hardlinks?: boolean;
  /** mkcomposefs --use-epoch: every mtime 0. */
  useEpoch?: boolean;
  /** mkcomposefs --skip-devices: leave out character and block devices (whiteouts too) below the root. */
  skipDevices?: boolean;
  /** mkcomposefs --skip-xattrs ('none') and --user-xattrs ('user'); default 'all'. */
  xattrs?: 'all' | 'user' | 'none';
}

export interface ReadTreeStats {
  files: number;
  objectsWritten: number;
  objectsReused: number;
  /** Objects whose fs-verity could not be enabled because the store's filesystem lacks it. */
  objectsWithoutVerity: number;
  bytesHashed: number;
}

const STEP = 'mkimage';

function fail(reason: string, file: Buffer | string, cause?: unknown): never {
  throw new StepError(STEP, reason, { path: typeof file === 'string' ? file : file.toString('utf8'), cause });
}

/**
 * st_rdev as EROFS stores it: the low 32 bits of glibc's dev_t, which for majors < 4096 are the kernel's
 * new_encode_dev() form that erofs_read_inode decodes (libcomposefs stores the same truncation).
 */
const encodeDev = (rdev: bigint): number => Number(rdev & 0xffffffffn);

export class TreeReader {
  readonly stats: ReadTreeStats = { files: 0, objectsWritten: 0, objectsReused: 0, objectsWithoutVerity: 0, bytesHashed: 0 };
  readonly #options: ReadTreeOptions;
  readonly #inodes = new Map<string, TreeNode>();
  readonly #buffer = Buffer.alloc(READ_CHUNK);
  /** Objects copied but not yet placed: object path -> temporary file. */
  readonly #pending = new Map<string, { temp: string; size: bigint }>();

  constructor(options: ReadTreeOptions) {
    this.#options = options;
  }

  read(root: string): TreeNode {
    // The store exists afterwards even when no file needed it: it is a layer of the overlay to mount.
    if (this.#options.digestStore !== undefined) fs.mkdirSync(this.#options.digestStore, { recursive: true, mode: 0o755 });
    let top: string;
    try {
      top = fs.realpathSync(root); // SOURCE may be a symlink to the tree; nothing below it is followed
    } catch (error) {
      fail('cannot resolve the source', root, error);
    }
    const node = this.#node(Buffer.from(top));
    if ((node.mode & S_IFMT) !== S_IFDIR) fail('the source is not a directory', root);
    return node;
  }

  #node(file: Buffer): TreeNode {
    let st: fs.BigIntStats;
    try {
      st = fs.lstatSync(file, { bigint: true });
    } catch (error) {
      fail('cannot stat', file, error);
    }
    const type = Number(st.mode) & S_IFMT;
    const key = `${st.dev}:${st.ino}`;
    const tracked = type !== S_IFDIR && st.nlink > 1n && this.#options.hardlinks !== false;
    if (tracked) {
      const seen = this.#inodes.get(key);
      if (seen !== undefined) return seen;
    }
    const node: TreeNode = {
      mode: Number(st.mode),
      uid: Number(st.uid),
      gid: Number(st.gid),
      // Floor division: before 1970 the seconds are negative and the nanoseconds still count up from them.
      mtimeSec: this.#options.useEpoch === true ? 0n : (st.mtimeNs - (((st.mtimeNs % NS) + NS) % NS)) / NS,
      mtimeNsec: this.#options.useEpoch === true ? 0 : Number(((st.mtimeNs % NS) + NS) % NS),
      size: type === S_IFREG ? st.size : 0n,
      rdev: encodeDev(st.rdev),
      xattrs: this.#xattrs(file),
    };
    if (tracked) this.#inodes.set(key, node);
    if (type === S_IFDIR) {
      node.children = new Map();
      let names: Buffer[];
      try {
        names = fs.readdirSync(file, { encoding: 'buffer' });
      } catch (error) {
        fail('cannot read directory', file, error);
      }
      for (const name of names) {
        const child = this.#node(Buffer.concat([file, Buffer.from('/'), name]));
        const childType = child.mode & S_IFMT;
        if (this.#options.skipDevices === true && (childType === S_IFCHR || childType === S_IFBLK)) continue;
        node.children.set(name.toString('latin1'), child);
      }
    } else if (type === S_IFLNK) {
      try {
        node.target = fs.readlinkSync(file, { encoding: 'buffer' });
      } catch (error) {
        fail('cannot read symlink', file, error);
      }
      node.size = BigInt(node.target.length);
    } else if (type === S_IFREG && node.size > 0n) {
      this.#content(file, node);
    }
    return node;
  }

  #xattrs(file: Buffer): TreeNode['xattrs'] {
    if (this.#options.xattrs === 'none') return [];
    let names: Buffer[];
    try {
      names = listXattrs(file);
    } catch (error) {
      // A filesystem without xattr support has none to copy.
      if (error instanceof SysError && error.code === 'EOPNOTSUPP') return [];
      fail('cannot list xattrs', file, error);
    }
    if (this.#options.xattrs === 'user') names = names.filter((name) => name.subarray(0, 5).equals(USER_PREFIX));
    try {
      return names.map((name) => ({ name: name.toString('latin1'), value: getXattr(file, name) }));
    } catch (error) {
      fail('cannot read xattrs', file, error);
    }
  }

  #content(file: Buffer, node: TreeNode): void {
    this.stats.files += 1;
    let fd: number;
    try {
      fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    } catch (error) {
      fail('cannot open', file, error);
    }
    try {
      if (node.size <= BigInt(INLINE_MAX)) {
        const content = Buffer.alloc(Number(node.size));
        const n = fs.readSync(fd, content, 0, content.length, 0);
        if (n !== content.length) fail(`file shrank while read (${n} of ${content.length} bytes)`, file);
        node.inline = content;
        return;
      }
      this.#object(fd, file, node);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Reads the whole file once, feeding the hasher and, when given, a temporary object file. Returns the digest. */
  #pass(fd: number, file: Buffer, node: TreeNode, out: number | undefined): Buffer {
    const hasher = new FsVerityHasher({ algorithm: this.#options.algorithm });
    let offset = 0;
    for (;;) {
      const n = fs.readSync(fd, this.#buffer, 0, READ_CHUNK, offset);
      if (n === 0) break;
      const chunk = this.#buffer.subarray(0, n);
      hasher.update(chunk);
      if (out !== undefined) fs.writeSync(out, chunk);
      offset += n;
    }
    if (BigInt(offset) !== node.size) fail(`file changed size while read (${offset}, stat said ${node.size})`, file);
    this.stats.bytesHashed += offset;
    return hasher.digest();
  }

  /**
   * Hashes the content; when a store is given and has no object of that digest yet, copies the content to a
   * temporary file there, hashing it again as it is copied (the copy must be what was named), to be placed by
   * commit(). An object already present costs one read and no write.
   */
  #object(fd: number, file: Buffer, node: TreeNode): void {
    const { digestStore } = this.#options;
    let temp: string | undefined;
    let out: number | undefined;
    try {
      node.digest = this.#pass(fd, file, node, undefined);
      node.payload = objectPath(node.digest);
      if (digestStore === undefined) return;
      if (this.#pending.has(node.payload) || this.#present(path.join(digestStore, node.payload), node.size)) {
        this.stats.objectsReused += 1;
        return;
      }
      temp = path.join(digestStore, `.tmp-${process.pid}-${this.stats.files}`);
      out = fs.openSync(temp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o644);
      const copied = this.#pass(fd, file, node, out);
      if (!copied.equals(node.digest)) fail('file changed while copied to the objects store', file);
      fs.fchmodSync(out, 0o644);
      fs.closeSync(out);
      out = undefined;
      this.#pending.set(node.payload, { temp, size: node.size });
      temp = undefined;
    } catch (error) {
      if (error instanceof StepError) throw error;
      fail('cannot hash or store content', file, error);
    } finally {
      if (out !== undefined) fs.closeSync(out);
      if (temp !== undefined) fs.rmSync(temp, { force: true });
    }
  }

  /** Whether the store has this object already; one of that name with another size is refused. */
  #present(object: string, size: bigint): boolean {
    const existing = fs.statSync(object, { throwIfNoEntry: false, bigint: true });
    if (existing === undefined) return false;
    if (!existing.isFile() || existing.size !== size) fail(`an object of this name exists with another size (${existing.size}, expected ${size})`, object);
    return true;
  }

  /**
   * Places the objects copied by read(): one syncfs for all their data, then each temp file is renamed to its
   * object path (so an object name never refers to unwritten data), unless an object of that digest is already
   * there. fs-verity is enabled where the store's filesystem supports it (what verity=require needs).
   */
  commit(): void {
    const store = this.#options.digestStore;
    if (store === undefined || this.#pending.size === 0) return;
    const dirFd = fs.openSync(store, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    try {
      syncFilesystem(dirFd, store);
    } finally {
      fs.closeSync(dirFd);
    }
    for (const [payload, { temp, size }] of [...this.#pending]) {
      const object = path.join(store, payload);
      if (this.#present(object, size)) {
        // Placed meanwhile by another writer.
        fs.rmSync(temp);
        this.stats.objectsReused += 1;
      } else {
        fs.mkdirSync(path.dirname(object), { recursive: true, mode: 0o755 });
        const fd = fs.openSync(temp, fs.constants.O_RDONLY);
        try {
          enableVerity(fd, FS_VERITY_ALGORITHM_IDS[this.#options.algorithm], 4096, temp);
        } catch (error) {
          if (!(error instanceof SysError && ['EOPNOTSUPP', 'ENOTTY', 'ENOSYS'].includes(error.code))) throw error;
          this.stats.objectsWithoutVerity += 1;
        } finally {
          fs.closeSync(fd);
        }
        fs.renameSync(temp, object);
        this.stats.objectsWritten += 1;
      }
      this.#pending.delete(payload);
    }
  }

  /** Removes the temporary files of objects not placed (after a failure). */
  abort(): void {
    for (const { temp } of this.#pending.values()) fs.rmSync(temp, { force: true });
    this.#pending.clear();
  }
}
