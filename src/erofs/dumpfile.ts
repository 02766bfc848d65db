// Reads the dump format (`composefs-info dump`, `sealroot inspect`) back into a TreeNode tree, as
// `mkcomposefs --from-file` does (tools/mkcomposefs.c tree_from_dump_line): one line per path,
//   PATH SIZE [@]MODE NLINK UID GID RDEV MTIME.NSEC PAYLOAD CONTENT DIGEST [XATTR=VALUE...]
// '@' marks a hard link whose PAYLOAD is the path of its target (the other fields are ignored).
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from './format.ts';
import type { TreeNode } from './tree.ts';

export class DumpSyntaxError extends Error {
  readonly line: number;
  constructor(line: number, message: string) {
    super(`line ${line}: ${message}`);
    this.name = 'DumpSyntaxError';
    this.line = line;
  }
}

const VALID_TYPES = new Set([S_IFREG, S_IFDIR, S_IFLNK, S_IFBLK, S_IFCHR, 0o010000, 0o140000]);

/** The escapes composefs-info writes: \\ \n \r \t \xHH. Input and output are latin1 (byte) strings. */
function unescape(text: string, line: number): string {
  if (!text.includes('\\')) return text;
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const next = text[++i];
    if (next === '\\') out += '\\';
    else if (next === 'n') out += '\n';
    else if (next === 'r') out += '\r';
    else if (next === 't') out += '\t';
    else if (next === 'x' && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 1, i + 3))) {
      out += String.fromCharCode(Number.parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      throw new DumpSyntaxError(line, `unsupported escape in '${text}'`);
    }
  }
  return out;
}

const optional = (text: string, line: number): string | undefined => (text === '-' ? undefined : unescape(text, line));

function integer(text: string, line: number, what: string, radix = 10): bigint {
  const pattern = radix === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
  if (!pattern.test(text)) throw new DumpSyntaxError(line, `invalid ${what} '${text}'`);
  return radix === 8 ? BigInt(`0o${text}`) : BigInt(text);
}

function splitPath(path: string, line: number): string[] {
  const parts = path.split('/').filter((part) => part.length > 0);
  if (parts.some((part) => part === '.' || part === '..')) throw new DumpSyntaxError(line, `'.' or '..' in path ${path}`);
  return parts;
}

/** Parses a whole dump (latin1 text: one char per byte). The first line must be the root, '/'. */
export function parseDump(text: string): TreeNode {
  let root: TreeNode | undefined;
  const links: { parent: TreeNode; name: string; target: string; line: number }[] = [];
  const lookup = (path: string, line: number): TreeNode | undefined => {
    let node = root;
    for (const part of splitPath(path, line)) node = node?.children?.get(part);
    return node;
  };
  const lines = text.split('\n');
  lines.forEach((raw, index) => {
    const line = index + 1;
    if (raw.length === 0) return;
    const fields = raw.split(' ');
    if (fields.length < 11) throw new DumpSyntaxError(line, `${fields.length} fields, at least 11 expected`);
    const path = unescape(fields[0]!, line);
    let modeText = fields[2]!;
    const hardlink = modeText.startsWith('@');
    if (hardlink) modeText = modeText.slice(1);
    const mode = Number(integer(modeText, line, 'mode', 8));
    if (!VALID_TYPES.has(mode & S_IFMT) || mode > 0xffff) throw new DumpSyntaxError(line, `invalid mode ${modeText}`);
    const parts = splitPath(path, line);
    if (parts.length === 0) {
      if (root !== undefined) throw new DumpSyntaxError(line, 'a second root');
      if ((mode & S_IFMT) !== S_IFDIR) throw new DumpSyntaxError(line, 'the root must be a directory');
    } else if (root === undefined) {
      throw new DumpSyntaxError(line, 'the root (/) must come first');
    }
    const parentPath = `/${parts.slice(0, -1).join('/')}`;
    const parent = parts.length === 0 ? undefined : lookup(parentPath, line);
    const name = parts[parts.length - 1]!;
    if (parts.length > 0) {
      if (parent?.children === undefined) throw new DumpSyntaxError(line, `no directory ${parentPath} for ${path}`);
      if (parent.children.has(name)) throw new DumpSyntaxError(line, `${path} listed twice`);
    }
    if (hardlink) {
      if ((mode & S_IFMT) === S_IFDIR) throw new DumpSyntaxError(line, 'a directory cannot be a hard link');
      const target = optional(fields[8]!, line);
      if (target === undefined) throw new DumpSyntaxError(line, `hard link ${path} without a target`);
      links.push({ parent: parent!, name, target, line });
      return;
    }
    const [secText, nsecText] = fields[7]!.split('.');
    const node: TreeNode = {
      mode,
      uid: Number(integer(fields[4]!, line, 'uid')),
      gid: Number(integer(fields[5]!, line, 'gid')),
      mtimeSec: secText?.startsWith('-') ? -integer(secText.slice(1), line, 'mtime') : integer(secText ?? '', line, 'mtime'),
      mtimeNsec: Number(integer(nsecText ?? '', line, 'mtime nanoseconds')),
      size: integer(fields[1]!, line, 'size'),
      rdev: 0,
      xattrs: [],
      nlink: Number(integer(fields[3]!, line, 'nlink')),
    };
    if (node.uid > 0xffffffff || node.gid > 0xffffffff || node.mtimeNsec >= 1e9) throw new DumpSyntaxError(line, 'uid, gid or nanoseconds out of range');
    const type = mode & S_IFMT;
    if (type === S_IFCHR || type === S_IFBLK) node.rdev = Number(BigInt.asUintN(32, integer(fields[6]!, line, 'rdev')));
    const payload = optional(fields[8]!, line);
    const content = optional(fields[9]!, line);
    if (type === S_IFDIR) {
      node.children = new Map();
    } else if (type === S_IFLNK) {
      if (payload === undefined || payload.length === 0) throw new DumpSyntaxError(line, `symlink ${path} without a target`);
      node.target = Buffer.from(payload, 'latin1');
      node.size = BigInt(node.target.length);
    } else if (type === S_IFREG) {
      if (content !== undefined) {
        if (BigInt(content.length) !== node.size) throw new DumpSyntaxError(line, `content of ${content.length} bytes for size ${node.size}`);
        if (content.length > 0) node.inline = Buffer.from(content, 'latin1');
      }
      if (payload !== undefined && payload.length > 0) node.payload = payload;
      const digest = optional(fields[10]!, line);
      if (digest !== undefined) {
        if (!/^([0-9a-f]{64}|[0-9a-f]{128})$/.test(digest)) throw new DumpSyntaxError(line, `invalid digest '${digest}'`);
        node.digest = Buffer.from(digest, 'hex');
      }
    }
    for (const field of fields.slice(11)) {
      const eq = field.indexOf('=');
      if (eq < 0) throw new DumpSyntaxError(line, `xattr without '=': ${field}`);
      const xattrName = unescape(field.slice(0, eq), line);
      const value = Buffer.from(unescape(field.slice(eq + 1), line), 'latin1');
      const existing = node.xattrs.findIndex((xattr) => xattr.name === xattrName);
      if (existing >= 0) node.xattrs.splice(existing, 1);
      node.xattrs.push({ name: xattrName, value });
    }
    if (parts.length === 0) {
      root = node;
    } else {
      parent!.children!.set(name, node);
      node.primary = { parent: parent!, name };
    }
  });
  if (root === undefined) throw new DumpSyntaxError(0, 'no root (/) line');
  for (const link of links) {
    const target = lookup(link.target, link.line);
    if (target === undefined) throw new DumpSyntaxError(link.line, `hard link target ${link.target} not found`);
    if ((target.mode & S_IFMT) === S_IFDIR) throw new DumpSyntaxError(link.line, 'a hard link to a directory');
    link.parent.children!.set(link.name, target);
  }
  return root;
}
