// Big-endian TPM wire encoding (Part 1 §18, Part 2 §5): a builder and a bounds-checked reader.

export class TpmFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TpmFormatError';
  }
}

export class Writer {
  private readonly parts: Buffer[] = [];

  u8(value: number): this {
    this.parts.push(Buffer.of(value & 0xff));
    return this;
  }

  u16(value: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(value);
    this.parts.push(b);
    return this;
  }

  u32(value: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(value >>> 0);
    this.parts.push(b);
    return this;
  }

  bytes(data: Uint8Array): this {
    this.parts.push(Buffer.from(data));
    return this;
  }

  /** A TPM2B: u16 size, then the bytes. */
  sized(data: Uint8Array): this {
    if (data.length > 0xffff) throw new TpmFormatError(`TPM2B of ${data.length} bytes`);
    return this.u16(data.length).bytes(data);
  }

  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}

export class Reader {
  private offset = 0;
  readonly buffer: Buffer;
  private readonly what: string;

  constructor(buffer: Buffer, what = 'response') {
    this.buffer = buffer;
    this.what = what;
  }

  private take(length: number): number {
    if (this.offset + length > this.buffer.length) {
      throw new TpmFormatError(`${this.what} truncated: need ${length} bytes at offset ${this.offset} of ${this.buffer.length}`);
    }
    const at = this.offset;
    this.offset += length;
    return at;
  }

  u8(): number {
    return this.buffer.readUInt8(this.take(1));
  }

  u16(): number {
    return this.buffer.readUInt16BE(this.take(2));
  }

  u32(): number {
    return this.buffer.readUInt32BE(this.take(4));
  }

  bytes(length: number): Buffer {
    const at = this.take(length);
    return Buffer.from(this.buffer.subarray(at, at + length));
  }

  sized(): Buffer {
    return this.bytes(this.u16());
  }

  get remaining(): number {
    return this.buffer.length - this.offset;
  }

  /** Every byte must have been consumed: trailing bytes mean a misparse. */
  end(): void {
    if (this.remaining !== 0) throw new TpmFormatError(`${this.what}: ${this.remaining} unexpected trailing bytes`);
  }
}
