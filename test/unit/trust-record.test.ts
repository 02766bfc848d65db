// The trusted set's NV record (src/trust/record.ts): byte layout, round trips, and every malformed record refused.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  checkSlotCount, checkVersion, decodeRecord, emptySet, encodeHeader, encodeRecord, encodeSlot, MAX_SLOTS, MAX_VERSION, members, oldestSlot, recordSize,
  slotOffset, type TrustedImage, type TrustedSet, versionBytes,
} from '../../src/trust/record.ts';

const image = (version: number, fill: number, algorithm: 'sha256' | 'sha512' = 'sha256', size = 4096 * version): TrustedImage => ({
  version, size, digest: { algorithm, bytes: Buffer.alloc(algorithm === 'sha256' ? 32 : 64, fill) },
});

test('layout: header, then big-endian (version, size, digest) slots; sizes for both algorithms', () => {
  assert.is(recordSize('sha256', 2), 4 + 2 * 48);
  assert.is(recordSize('sha512', 2), 4 + 2 * 80);
  assert.is(recordSize('sha512', MAX_SLOTS), 484);
  assert.is(slotOffset('sha256', 1), 52);
  assert.is(slotOffset('sha512', 2), 164);
  const set: TrustedSet = { algorithm: 'sha256', slots: [image(0x0102030405, 0xd1, 'sha256', 0x1000), undefined] };
  const bytes = encodeRecord(set);
  assert.is(bytes.length, 100);
  assert.is(bytes.subarray(0, 4).toString('hex'), '01010200');
  assert.is(bytes.subarray(4, 12).toString('hex'), '0000000102030405');
  assert.is(bytes.subarray(12, 20).toString('hex'), '0000000000001000');
  assert.is(bytes.subarray(20, 52).toString('hex'), 'd1'.repeat(32));
  assert.is(bytes.subarray(52).toString('hex'), '00'.repeat(48), 'an empty slot is all zeros');
  assert.is(encodeSlot(set.slots[0]!).toString('hex'), bytes.subarray(4, 52).toString('hex'));
  assert.is(versionBytes(258).toString('hex'), '0000000000000102');
  assert.is(encodeHeader('sha256', 2).toString('hex'), '01010200');
  assert.is(encodeHeader('sha512', 6).toString('hex'), '01020600');
  assert.throws(() => encodeHeader('sha256', 7), /2 to 6 slots/);
  assert.is(encodeRecord({ algorithm: 'sha512', slots: [undefined, undefined, image(3, 0x5a, 'sha512')] }).subarray(0, 4).toString('hex'), '01020300');
});

test('round trips: 2 to 6 slots, SHA-256 and SHA-512, empty slots, the largest version', () => {
  for (const algorithm of ['sha256', 'sha512'] as const) {
    for (let count = 2; count <= MAX_SLOTS; count++) {
      const set = emptySet(algorithm, count);
      set.slots[count - 1] = image(MAX_VERSION, 0xee, algorithm, Number.MAX_SAFE_INTEGER);
      set.slots[0] = image(7, 0x07, algorithm);
      const decoded = decodeRecord(encodeRecord(set));
      assert.equal(decoded, set);
      assert.is(decodeRecord(encodeRecord(decoded)).slots.length, count);
    }
  }
  const empty = decodeRecord(encodeRecord(emptySet('sha256', 3)));
  assert.equal(empty.slots, [undefined, undefined, undefined]);
  assert.equal(members(empty), []);
});

test('decode refuses every malformed record (never half-read)', () => {
  const good = encodeRecord({ algorithm: 'sha256', slots: [image(1, 0xd1), image(2, 0xd2)] });
  const mutate = (edit: (bytes: Buffer) => Buffer | void): Buffer => {
    const copy = Buffer.from(good);
    return edit(copy) ?? copy;
  };
  const refused: [string, Buffer, RegExp][] = [
    ['empty', Buffer.alloc(0), /the record has 0 bytes/],
    ['3 bytes', good.subarray(0, 3), /the record has 3 bytes/],
    ['another format', mutate((b) => { b[0] = 2; }), /record format 2 \(this sealroot reads format 1\)/],
    ['format 0 (an unwritten index reads zeros)', Buffer.alloc(100), /record format 0/],
    ['unknown algorithm 0', mutate((b) => { b[1] = 0; }), /unknown digest algorithm 0/],
    ['unknown algorithm 3', mutate((b) => { b[1] = 3; }), /unknown digest algorithm 3/],
    ['1 slot', mutate((b) => { b[2] = 1; }), /bad header \(slots 1/],
    ['7 slots', mutate((b) => { b[2] = 7; }), /bad header \(slots 7/],
    ['reserved byte', mutate((b) => { b[3] = 1; }), /reserved 1/],
    ['one byte short', good.subarray(0, good.length - 1), /99 bytes for 2 sha256 slots \(expected 100\)/],
    ['one byte more', Buffer.concat([good, Buffer.alloc(1)]), /101 bytes/],
    ['sha512 header over sha256 slots', mutate((b) => { b[1] = 2; }), /100 bytes for 2 sha512 slots \(expected 164\)/],
    ['version 0 with an image', mutate((b) => { b.fill(0, 4, 12); }), /slot 0: version 0, size 4096 out of range/],
    ['empty slot with a digest', mutate((b) => { b.fill(0, 52, 68); }), /slot 1 is empty \(size 0\) but its digest is not zero/],
    ['size 0 with a digest', mutate((b) => { b.fill(0, 12, 20); }), /slot 0 is empty \(size 0\) but its digest is not zero/],
    ['version above 2^53', mutate((b) => { b.writeBigUInt64BE(2n ** 53n, 4); }), /slot 0: version 9007199254740992/],
    ['version 2^64-1', mutate((b) => { b.fill(0xff, 4, 12); }), /out of range/],
    ['size above 2^53', mutate((b) => { b.writeBigUInt64BE(2n ** 60n, 60); }), /slot 1: .*out of range/],
    ['two slots with one version', mutate((b) => { b.writeBigUInt64BE(1n, 52); }), /two slots hold the same version/],
  ];
  for (const [what, bytes, message] of refused) assert.throws(() => decodeRecord(bytes), message, what);
  assert.is(decodeRecord(good).slots.length, 2);
});

test('empty slots hold a floor: size 0, zero digest, the version below which nothing may fill them', () => {
  const set: TrustedSet = { algorithm: 'sha256', slots: [image(5, 0xd5), undefined, undefined], floor: 4 };
  const bytes = encodeRecord(set);
  assert.is(bytes.subarray(slotOffset('sha256', 1), slotOffset('sha256', 1) + 16).toString('hex'), `${'00'.repeat(7)}04${'00'.repeat(8)}`);
  assert.is(bytes.subarray(slotOffset('sha256', 1) + 16, slotOffset('sha256', 2)).toString('hex'), '00'.repeat(32));
  assert.equal(decodeRecord(bytes), set);
  assert.equal(members(decodeRecord(bytes)).map((entry) => entry.version), [5]);
  // Without a floor: version 0 (as before), and no floor key after decoding.
  assert.equal(decodeRecord(encodeRecord({ algorithm: 'sha256', slots: [image(1, 1), undefined] })), { algorithm: 'sha256', slots: [image(1, 1), undefined] });
  // The floor may equal a member's version (the first install's N - 1 never does, but it is not an image).
  assert.equal(decodeRecord(encodeRecord({ ...set, floor: 5 })).floor, 5);
  assert.throws(() => encodeRecord({ ...set, floor: -1 }), /a version is a whole number/);
  // The slot an update takes: the floor is below the installed version.
  assert.is(oldestSlot([5, 4, 4]), 1);
});

test('encode refuses what decode would refuse: bad versions, sizes, digests, slot counts, mixed algorithms', () => {
  assert.throws(() => encodeRecord({ algorithm: 'sha256', slots: [image(1, 1)] }), /2 to 6 slots, not 1/);
  assert.throws(() => encodeRecord({ algorithm: 'sha256', slots: new Array<undefined>(7).fill(undefined) }), /not 7/);
  assert.throws(() => encodeRecord({ algorithm: 'sha256', slots: [image(1, 1, 'sha512'), undefined] }), /a sha512 digest in a sha256 set/);
  assert.throws(() => encodeSlot(image(0, 1)), /a version is a whole number from 1/);
  assert.throws(() => encodeSlot({ ...image(1, 1), size: 0 }), /image size is a positive whole number, not 0/);
  assert.throws(() => encodeSlot({ ...image(1, 1), size: 1.5 }), /not 1.5/);
  assert.throws(() => encodeSlot({ version: 1, size: 1, digest: { algorithm: 'sha256', bytes: Buffer.alloc(31) } }), /digest of the wrong length/);
  for (const bad of [0, -1, 1.5, Number.NaN, MAX_VERSION + 1, Infinity]) assert.throws(() => checkVersion(bad), /a version is a whole number/, String(bad));
  assert.is(checkVersion(MAX_VERSION), MAX_VERSION);
  for (const bad of [0, 1, 7, 2.5]) assert.throws(() => checkSlotCount(bad), /2 to 6 slots/, String(bad));
  assert.throws(() => emptySet('sha256', 1), /2 to 6 slots/);
});

test('members: newest first; oldestSlot: an empty slot (version 0) or the oldest, the first on a tie', () => {
  const set: TrustedSet = { algorithm: 'sha256', slots: [image(3, 3), undefined, image(5, 5), image(2, 2)] };
  assert.equal(members(set).map((entry) => entry.version), [5, 3, 2]);
  assert.is(oldestSlot([3, 0]), 1);
  assert.is(oldestSlot([0, 3]), 0);
  assert.is(oldestSlot([5, 2, 7]), 1);
  assert.is(oldestSlot([4, 4, 4]), 0);
  assert.is(oldestSlot([9, 1, 1]), 1);
  // Slots that cannot take the update (not older than it) are infinitely new for the applier.
  assert.is(oldestSlot([Infinity, 4]), 1);
  assert.is(oldestSlot([2, Infinity, 0]), 2);
});

test.run();
