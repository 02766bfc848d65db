// Pure: the GLib key-file format ostree's prepare-root.conf is written in ([group], key=value, # comments),
// and ostree's readings of its values (ot-keyfile-utils.c: booleans as GLib reads them, tristates yes/no/maybe).

export type KeyFile = Map<string, Map<string, string>>;

export class KeyFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyFileError';
  }
}

/** Parses `text` into `into` (later files override earlier ones key by key, as ostree loads usr/lib then etc). */
export function parseKeyFile(text: string, origin: string, into: KeyFile = new Map()): KeyFile {
  let group: Map<string, string> | undefined;
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const header = /^\[([^\][]+)\]$/.exec(line);
    if (header !== null) {
      const name = header[1]!;
      group = into.get(name) ?? new Map();
      into.set(name, group);
      return;
    }
    const eq = line.indexOf('=');
    if (eq <= 0) throw new KeyFileError(`${origin}:${index + 1}: not a key=value line: '${line}'`);
    if (group === undefined) throw new KeyFileError(`${origin}:${index + 1}: key outside of any [group]`);
    group.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  });
  return into;
}

export function keyFileValue(file: KeyFile, group: string, key: string): string | undefined {
  return file.get(group)?.get(key);
}

/** g_key_file_get_boolean: true/false/1/0 (anything else is an error). */
export function keyFileBoolean(file: KeyFile, group: string, key: string, fallback: boolean): boolean {
  const value = keyFileValue(file, group, key);
  if (value === undefined) return fallback;
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new KeyFileError(`${group}.${key} must be true or false, not '${value}'`);
}

export type Tristate = 'yes' | 'no' | 'maybe';

/** _ostree_parse_tristate: yes/true/1, no/false/0, maybe. */
export function parseTristate(value: string, what: string): Tristate {
  if (['yes', 'true', '1'].includes(value)) return 'yes';
  if (['no', 'false', '0'].includes(value)) return 'no';
  if (value === 'maybe') return 'maybe';
  throw new KeyFileError(`${what} must be yes, no or maybe, not '${value}'`);
}
