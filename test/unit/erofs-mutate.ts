// Deterministic mutations of a valid image, for the reader's fuzz test and the fuzz bench.

/** mulberry32: a small seeded PRNG, so a failing case can be replayed from its seed and index. */
export class Random {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  }

  below(n: number): number {
    return Math.floor(this.next() * n);
  }
}

const INTERESTING = [0, 1, 2, 3, 4, 7, 8, 11, 12, 13, 16, 31, 32, 63, 64, 255, 256, 4095, 4096, 4097, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

/**
 * 1 to 4 mutations: bit flips, random or boundary integers at aligned offsets, truncation, extension. With
 * `targets` (offsets of structures in the image: inodes, directory blocks, xattr entries), half of them land in
 * the 64 bytes after one of those; otherwise most land in the superblock and the first metadata blocks.
 */
export function mutate(image: Buffer, random: Random, targets: readonly number[] = []): Buffer {
  let out = Buffer.from(image);
  const count = 1 + random.below(4);
  for (let i = 0; i < count; i++) {
    let at: number;
    if (targets.length > 0 && random.next() < 0.5) {
      at = targets[random.below(targets.length)]! + random.below(64);
    } else {
      const hot = random.next() < 0.7;
      const span = hot ? Math.min(out.length, 1024 + 3 * 4096) : out.length;
      const from = hot ? Math.min(1024, out.length) : 0;
      at = from + random.below(Math.max(1, span - from));
    }
    at = Math.min(at, Math.max(0, out.length - 1));
    const kind = random.below(100);
    if (out.length === 0) break;
    if (kind < 35) {
      out[Math.min(at, out.length - 1)]! ^= 1 << random.below(8);
    } else if (kind < 60) {
      const aligned = Math.min(at - (at % 2), out.length - 2);
      if (aligned >= 0) out.writeUInt16LE(random.below(0x10000), aligned);
    } else if (kind < 85) {
      const aligned = Math.min(at - (at % 4), out.length - 4);
      const value = INTERESTING[random.below(INTERESTING.length)]!;
      if (aligned >= 0) out.writeUInt32LE(random.next() < 0.5 ? value : (value + out.length / 32) >>> 0, aligned);
    } else if (kind < 93) {
      out[Math.min(at, out.length - 1)] = random.below(256);
    } else if (kind < 98) {
      out = out.subarray(0, random.below(out.length));
    } else {
      out = Buffer.concat([out, Buffer.alloc(4096)]);
    }
  }
  return out;
}
