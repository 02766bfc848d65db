// Pure: /run/ostree-booted, the a{sv} GVariant ostree-prepare-root writes (libotcore/otcore.h keys). libostree
// finds the booted deployment by `backing-root-device-inode` when / is a composefs overlay (its own device and
// inode say nothing), so the file must carry it. Serialization per the GVariant specification (1.0):
// little-endian (as GLib writes it on x86_64 and aarch64), children aligned within their container, framing
// offsets for variable-size items, offset width from the container's total size.

export type BootedValue =
  | { type: 'b'; value: boolean }
  | { type: 's'; value: string }
  | { type: '(tt)'; value: readonly [bigint, bigint] };

function align(length: number, to: number): number {
  return Math.ceil(length / to) * to;
}

function value(v: BootedValue): Buffer {
  switch (v.type) {
    case 'b': return Buffer.from([v.value ? 1 : 0]);
    case 's': return Buffer.from(`${v.value}\0`, 'utf8');
    case '(tt)': {
      const out = Buffer.alloc(16);
      out.writeBigUInt64LE(v.value[0], 0);
      out.writeBigUInt64LE(v.value[1], 8);
      return out;
    }
  }
}

/** Appends framing offsets (each `ends` entry) with the width GLib picks for the container's total size. */
function withOffsets(body: Buffer, ends: readonly number[]): Buffer {
  let width = 1;
  while (width < 8 && body.length + width * ends.length > 2 ** (8 * width) - 1) width *= 2;
  const offsets = Buffer.alloc(width * ends.length);
  ends.forEach((end, i) => offsets.writeUIntLE(end, i * width, Math.min(width, 6)));
  return Buffer.concat([body, offsets]);
}

/** A variant: the child's bytes, a zero byte, the child's type string. */
function variant(v: BootedValue): Buffer {
  return Buffer.concat([value(v), Buffer.from([0]), Buffer.from(v.type, 'ascii')]);
}

/** A {sv} dict entry: key, padding to the variant's alignment (8), variant, and the key's end as framing offset. */
function entry(key: string, v: BootedValue): Buffer {
  const keyBytes = Buffer.from(`${key}\0`, 'utf8');
  const body = Buffer.alloc(align(keyBytes.length, 8));
  keyBytes.copy(body);
  return withOffsets(Buffer.concat([body, variant(v)]), [keyBytes.length]);
}

export function encodeBootedMetadata(entries: readonly (readonly [string, BootedValue])[]): Buffer {
  const parts: Buffer[] = [];
  const ends: number[] = [];
  let length = 0;
  for (const [key, v] of entries) {
    const padded = align(length, 8);
    if (padded > length) parts.push(Buffer.alloc(padded - length));
    const bytes = entry(key, v);
    parts.push(bytes);
    length = padded + bytes.length;
    ends.push(length);
  }
  return withOffsets(Buffer.concat(parts), ends);
}
