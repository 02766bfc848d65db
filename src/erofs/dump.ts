// The tree an image describes, as text: the format of libcomposefs' `composefs-info dump` (also what
// `mkcomposefs --from-file` reads). One line per path, depth-first in name order:
//   PATH SIZE [@]MODE NLINK UID GID RDEV MTIME.NSEC PAYLOAD CONTENT DIGEST [XATTR=VALUE...]
// Overlay bookkeeping is undone as libcomposefs' reader does: metacopy gives DIGEST, redirect gives PAYLOAD,
// escaped trusted.overlay.overlay.* xattrs are shown unescaped, escaped whiteouts as character devices 0/0,
// and the root's 00..ff whiteouts are left out. A later name of an inode already listed is a hard link:
// '@' before its mode and the first name as PAYLOAD.
import { LAYOUT_CHUNK_BASED, S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from './format.ts';
import type { ErofsReader, ParsedInode } from './reader.ts';
import { walkImage } from './validate.ts';

const ESCAPE_EQUAL = 1;
const ESCAPE_LONE_DASH = 2;

/** composefs-info print_escaped, C locale: non-graphic bytes as \xNN, backslash and \n \r \t as C escapes. */
export function escapeDump(bytes: Buffer, flags = 0): string {
  if ((flags & ESCAPE_LONE_DASH) !== 0 && bytes.length === 1 && bytes[0] === 0x2d) return '\\x2d';
  let out = '';
  for (const c of bytes) {
    if (c === 0x5c) out += '\\\\';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x09) out += '\\t';
    else if ((c === 0x3d && (flags & ESCAPE_EQUAL) !== 0) || c < 0x21 || c > 0x7e) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += String.fromCharCode(c);
  }
  return out;
}

const escapeOptional = (bytes: Buffer | undefined): string => (bytes === undefined ? '-' : escapeDump(bytes, ESCAPE_LONE_DASH));

interface DumpNode {
  mode: number;
  size: bigint;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  mtimeSec: bigint;
  mtimeNsec: number;
  payload: Buffer | undefined;
  content: Buffer | undefined;
  digest: Buffer | undefined;
  xattrs: { name: Buffer; value: Buffer }[];
}

const latin1 = (text: string): Buffer => Buffer.from(text, 'latin1');

/** lcfs_build_node_from_image: the inode as libcomposefs presents it (undefined for a real whiteout). */
function dumpNode(reader: ErofsReader, parsed: ParsedInode): DumpNode | undefined {
  const type = parsed.mode & S_IFMT;
  if (type === S_IFCHR && parsed.rdev === 0) return undefined;
  const node: DumpNode = {
    mode: parsed.mode, size: BigInt(parsed.size), nlink: parsed.nlink, uid: parsed.uid, gid: parsed.gid, rdev: parsed.rdev,
    mtimeSec: reader.mtimeSec(parsed), mtimeNsec: parsed.mtimeNsec, payload: undefined, content: undefined, digest: undefined, xattrs: [],
  };
  if (type === S_IFLNK) node.payload = reader.symlinkTarget(parsed);
  else if (type === S_IFREG && parsed.size !== 0 && parsed.layout !== LAYOUT_CHUNK_BASED) node.content = reader.data(parsed);
  for (const { name, value } of parsed.xattrs) {
    if (name === 'trusted.overlay.redirect') {
      if ((node.mode & S_IFMT) === S_IFREG) node.payload = value.length > 1 && value[0] === 0x2f ? value.subarray(1) : value;
      continue;
    }
    if (name === 'trusted.overlay.metacopy') {
      if ((node.mode & S_IFMT) === S_IFREG && (value.length === 36 || value.length === 68)) node.digest = value.subarray(4);
      continue;
    }
    if (name === 'trusted.overlay.overlay.whiteout' && (node.mode & S_IFMT) === S_IFREG) {
      node.mode = (node.mode & ~S_IFMT) | S_IFCHR;
      node.rdev = 0;
      node.size = 0n;
      continue;
    }
    if (['trusted.overlay.overlay.whiteouts', 'user.overlay.whiteout', 'user.overlay.whiteouts'].includes(name)) continue;
    let shown = name;
    if (name.startsWith('trusted.overlay.')) {
      if (!name.startsWith('trusted.overlay.overlay.')) continue;
      shown = `trusted.${name.slice('trusted.overlay.'.length)}`;
    }
    node.xattrs.push({ name: latin1(shown), value });
  }
  return node;
}

function line(path: Buffer, node: DumpNode, hardlinkTo: Buffer | undefined): string {
  const fields = [
    escapeDump(path.length === 0 ? Buffer.from('/') : path),
    node.size.toString(),
    `${hardlinkTo === undefined ? '' : '@'}${node.mode.toString(8)}`,
    String(node.nlink), String(node.uid), String(node.gid), String(node.rdev),
    `${node.mtimeSec}.${node.mtimeNsec}`,
    escapeOptional(hardlinkTo ?? node.payload),
    escapeOptional(node.content),
    node.digest === undefined ? '-' : node.digest.toString('hex'),
  ];
  for (const xattr of node.xattrs) fields.push(`${escapeDump(xattr.name, ESCAPE_EQUAL)}=${escapeDump(xattr.value, ESCAPE_EQUAL)}`);
  return `${fields.join(' ')}\n`;
}

/** The dump of a whole image, after the strict walk has accepted it (throws ImageError otherwise). */
export function dumpImage(reader: ErofsReader, out: (text: string) => void): void {
  // A digest-less image is shown as it is (its DIGEST column '-'): inspecting it is how one finds out.
  walkImage(reader, { requireDigests: false });
  const first = new Map<number, { path: Buffer; node: DumpNode }>();
  const root = reader.inode(reader.rootNid);
  const rootNode = dumpNode(reader, root)!;
  first.set(root.nid, { path: Buffer.alloc(0), node: rootNode });
  out(line(Buffer.alloc(0), rootNode, undefined));
  // Depth-first, name order, with an explicit stack (directories may nest deeply).
  const stack: { path: Buffer; entries: { name: string; nid: number }[]; next: number }[] = [
    { path: Buffer.alloc(0), entries: reader.readDir(root), next: 0 },
  ];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.next >= top.entries.length) {
      stack.pop();
      continue;
    }
    const entry = top.entries[top.next++]!;
    if (entry.name === '.' || entry.name === '..') continue;
    const path = Buffer.concat([top.path, Buffer.from('/'), latin1(entry.name)]);
    const seen = first.get(entry.nid);
    if (seen !== undefined) {
      out(line(path, seen.node, seen.path.length === 0 ? Buffer.from('/') : seen.path));
      continue;
    }
    const parsed = reader.inode(entry.nid);
    const node = dumpNode(reader, parsed);
    if (node === undefined) continue;
    first.set(entry.nid, { path, node });
    out(line(path, node, undefined));
    if ((parsed.mode & S_IFMT) === S_IFDIR) stack.push({ path, entries: reader.readDir(parsed), next: 0 });
  }
}
