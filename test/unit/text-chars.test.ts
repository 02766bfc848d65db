// The boot's text read with string operations instead of regular expressions (issue 15: a boot's first regular
// expression costs ~20 ms under QEMU TCG). Each replacement is checked against the regular expression it replaced,
// kept here as the oracle, on hand-picked hostile inputs and on seeded random ones built from the characters that
// matter to it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isPcrSelectionText } from '../../src/config/boot-config.ts';
import { replaceFdPaths } from '../../src/root/confined-open.ts';
import { hasFlag } from '../../src/sys/native.ts';
import { isDecimal, isHex, isLowerHexBytes, isWhitespace } from '../../src/text/chars.ts';
import { BANKS, PCR_COUNT } from '../../src/tpm2/constants.ts';
import { parsePcrSelection } from '../../src/tpm2/pcr-selection.ts';
import { publicKeyPemDer } from '../../src/tpm2/public-key-der.ts';
import { parseDigest } from '../../src/verity/digest.ts';
import { ROOT } from '../helpers/tools.ts';

/** xorshift32: the same strings on every run. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
}

function strings(alphabet: string[], count: number, maxLength: number, seed: number): string[] {
  const next = random(seed);
  return Array.from({ length: count }, () => Array.from({ length: Math.floor(next() * (maxLength + 1)) }, () => alphabet[Math.floor(next() * alphabet.length)]!).join(''));
}

const outcome = <T>(run: () => T): { ok: true; value: T } | { ok: false; message: string } => {
  try {
    return { ok: true, value: run() };
  } catch (error) {
    return { ok: false, message: (error as Error).message };
  }
};

test('character classes: every UTF-16 code unit as the regular expressions class it', () => {
  for (let code = 0; code < 0x10000; code++) {
    const c = String.fromCharCode(code);
    if (isDecimal(c) !== /^[0-9]+$/.test(c)) assert.unreachable(`isDecimal U+${code.toString(16)}`);
    if (isHex(c) !== /^[0-9a-f]+$/.test(c)) assert.unreachable(`isHex U+${code.toString(16)}`);
    if (isHex(c, true) !== /^[0-9a-fA-F]+$/.test(c)) assert.unreachable(`isHex upper U+${code.toString(16)}`);
    if (isWhitespace(c) !== /^\s$/.test(c)) assert.unreachable(`isWhitespace U+${code.toString(16)}`);
  }
  for (const text of ['', '0', '00', '0a', 'a0f', '0G', 'ab\n', ' 12', '12 ', '٣', ...strings(['0', '9', 'a', 'f', 'A', 'F', 'g', ' ', '\n', '/'], 3000, 6, 1)]) {
    assert.is(isDecimal(text), /^[0-9]+$/.test(text), JSON.stringify(text));
    assert.is(isHex(text), /^[0-9a-f]+$/.test(text), JSON.stringify(text));
    assert.is(isHex(text, true), /^[0-9a-fA-F]+$/.test(text), JSON.stringify(text));
    assert.is(isLowerHexBytes(text), /^([0-9a-f]{2})+$/.test(text), JSON.stringify(text));
  }
});

test('tpm.pcrs of the boot configuration: the same selections accepted as the regular expression did', () => {
  const oracle = /^(sha1|sha256|sha384|sha512):\d+(,\d+)*(\+(sha1|sha256|sha384|sha512):\d+(,\d+)*)*$/;
  const picked = ['sha256:7', 'sha256:0,2,4,7+sha1:4', 'sha512:1+sha384:2,3', '', 'sha256:', 'sha256:7,', 'sha256:,7', 'sha256:7+', '+sha256:7',
    'sha3:7', 'SHA256:7', 'sha256 :7', 'sha256: 7', 'sha256:7 ', 'sha256:7\n', 'sm3_256:1', 'sha256:7:8', 'sha256::7', 'sha256:٣'];
  for (const text of [...picked, ...strings(['sha1', 'sha256', 'sha384', 'sha512', 'sha', ':', ',', '+', '7', '12', ' ', 'x'], 5000, 8, 2)]) {
    assert.is(isPcrSelectionText(text), oracle.test(text), JSON.stringify(text));
  }
});

test('PCR selections (tpm2-tools syntax): the same selections and refusals as the regular expression gave', () => {
  // The parser as it was, with its regular expression: the oracle.
  const before = (text: string) => {
    if (text.trim() === '') throw new Error('empty PCR selection');
    const selection: { bank: string; pcrs: number[] }[] = [];
    for (const part of text.split('+')) {
      const match = /^([a-z0-9_]+):([0-9,\s]+)$/.exec(part.trim());
      if (match === null) throw new Error(`not a PCR selection: '${part}' (expected e.g. sha256:0,7)`);
      const bank = match[1]!;
      if (!Object.hasOwn(BANKS, bank)) throw new Error(`unknown PCR bank '${bank}' (banks: ${Object.keys(BANKS).join(', ')})`);
      const pcrs = match[2]!.split(',').map((item) => {
        const trimmed = item.trim();
        const pcr = Number(trimmed);
        if (trimmed === '' || !Number.isInteger(pcr) || pcr < 0 || pcr >= PCR_COUNT) throw new Error(`PCR index out of range in '${part}': '${item}' (0-${PCR_COUNT - 1})`);
        return pcr;
      });
      if (selection.some((entry) => entry.bank === bank)) throw new Error(`bank ${bank} selected twice`);
      selection.push({ bank, pcrs: [...new Set(pcrs)].sort((a, b) => a - b) });
    }
    return selection;
  };
  const picked = ['sha256:7', ' sha256 : 7', 'sha256: 0, 7 ', 'sha256:0,7\n+sha1:4', 'SHA256:7', 'sha_1:7', ':7', 'sha256:', 'sha256:a', 'sha256:7:8',
    'sha256\u00a0:7', 'sha256:\u20287', 'sha256:7,,8', 'sm3_256:0', 'sha1:0+sha1:1'];
  for (const text of [...picked, ...strings(['sha256', 'sha1', 'sm3_256', 'Sha', ':', ',', '+', ' ', '\t', '\u3000', '7', '24', 'x', '_'], 5000, 7, 3)]) {
    assert.equal(outcome(() => parsePcrSelection(text)), outcome(() => before(text)), JSON.stringify(text));
  }
  assert.equal(parsePcrSelection(' sha256:7, 0 +sha1:4'), [{ bank: 'sha256', pcrs: [0, 7] }, { bank: 'sha1', pcrs: [4] }]);
});

test('digests (sha256:/sha512: or bare hex): the same digests and refusals as the regular expression gave', () => {
  const hex64 = 'a'.repeat(63) + 'F';
  const hex128 = '0'.repeat(128);
  const picked = [hex64, `sha256:${hex64}`, `sha512:${hex128}`, hex128, ` sha256:${hex64}\n`, `sha256:${hex128}`, `sha512:${hex64}`, `sha1:${hex64}`,
    `SHA256:${hex64}`, `sha256:`, 'sha256', '', `sha256: ${hex64}`, `${hex64}g`, `sha256:sha256:${hex64}`, `${hex64.slice(1)}`];
  const before = (text: string) => {
    const match = /^(?:(sha256|sha512):)?([0-9a-fA-F]+)$/.exec(text.trim());
    if (match === null) throw new Error(`not a digest: '${text}' (expected sha256:<64 hex digits> or sha512:<128 hex digits>)`);
    const hex = match[2]!.toLowerCase();
    const algorithm = match[1] ?? (hex.length === 64 ? 'sha256' : hex.length === 128 ? 'sha512' : undefined);
    if (algorithm === undefined || hex.length !== (algorithm === 'sha256' ? 64 : 128)) throw new Error(`not a digest: '${text}' (expected sha256:<64 hex digits> or sha512:<128 hex digits>)`);
    return { algorithm, bytes: Buffer.from(hex, 'hex') };
  };
  const random64 = strings(['sha256:', 'sha512:', hex64.slice(0, 32), hex128.slice(0, 64), 'ab', ':', ' ', 'z'], 5000, 5, 4);
  for (const text of [...picked, ...random64]) assert.equal(outcome(() => parseDigest(text)), outcome(() => before(text)), JSON.stringify(text));
});

test('/proc/self/fd/N in a log line: replaced by its label as the regular expression did, other text untouched', () => {
  const labels = new Map([['/proc/self/fd/3', '/sysroot/composefs/images/x'], ['/proc/self/fd/12', '/sysroot/composefs/objects']]);
  const picked = ['', 'no fd here', '/proc/self/fd/3', 'layers /proc/self/fd/12,/proc/self/fd/3:/proc/self/fd/7 and /proc/self/fd/ and /proc/self/fd/x',
    '/proc/self/fd/31', '/proc/self/fd//proc/self/fd/3', '/proc/self/fd/3/proc/self/fd/12'];
  for (const text of [...picked, ...strings(['/proc/self/fd/', '3', '12', '1', '/', ',', 'x', ' '], 5000, 8, 5)]) {
    assert.is(replaceFdPaths(text, labels), text.replace(/\/proc\/self\/fd\/\d+/g, (fd) => labels.get(fd) ?? fd), JSON.stringify(text));
  }
});

test('a profiler flag in the options: found as a whole word as the regular expression did', () => {
  const oracle = /--(cpu-prof|heap-prof|prof)\b/;
  const found = (text: string) => ['--cpu-prof', '--heap-prof', '--prof'].some((flag) => hasFlag(text, flag));
  for (const text of ['', '--cpu-prof', '--cpu-prof-dir x', '--cpu-profx', '--prof_x', '--prof9', '--profile', '--heap-prof --x', '---prof', '--stack-size=1',
    ...strings(['--', 'cpu-', 'heap-', 'prof', 'x', '_', '-', ' ', '='], 5000, 6, 6)]) {
    assert.is(found(text), oracle.test(text), JSON.stringify(text));
  }
});

test('the PUBLIC KEY PEM: the same DER and refusals as the regular expressions gave, on real keys and mutated ones', () => {
  const before = (pem: string): Buffer | undefined => {
    const first = /-----BEGIN ([A-Z0-9 ]+)-----/.exec(pem);
    if (first === null || first[1] !== 'PUBLIC KEY') return undefined;
    const match = /^\s*-----BEGIN PUBLIC KEY-----\r?\n((?:[A-Za-z0-9+/]+={0,2}\r?\n)+)-----END PUBLIC KEY-----\s*$/.exec(pem);
    if (match === null) throw new Error('not one PUBLIC KEY block of base64 lines, with nothing around it but whitespace');
    const body = match[1]!.replace(/\r?\n/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body) || body.length % 4 !== 0) throw new Error('the PUBLIC KEY block is not base64');
    return Buffer.from(body, 'base64');
  };
  const keys = ['test-policy-key.pub.pem', 'test-policy-key-ec.pub.pem'].map((name) => fs.readFileSync(path.join(ROOT, 'keys', name), 'utf8'));
  const ec = keys[1]!;
  const picked = [...keys, ec.replace(/\n/g, '\r\n'), ` \n\t${ec}\n\n`, `x${ec}`, `${ec}x`, ec.replace('-----BEGIN PUBLIC KEY-----\n', '-----BEGIN PUBLIC KEY-----'),
    ec.replace(/\n-----END/, '=\n-----END'), ec.replace(/\n-----END/, '===\n-----END'), ec.replace(/\n(?=[A-Za-z0-9])/, '=\n'), '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n',
    '-----BEGIN -----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n', '-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n', '-----BEGIN PUBLIC KEY-----\nAA==\n-----END PUBLIC KEY-----',
    '-----BEGIN PUBLIC KEY-----\nAAA\nA\n-----END PUBLIC KEY-----\n', '-----BEGIN PUBLIC KEY-----\r\nAAAA\r-----END PUBLIC KEY-----\n', '', 'junk', '-----BEGIN public key-----\nAAAA\n-----END public key-----\n'];
  const next = random(7);
  const mutations: string[] = [];
  const pieces = ['=', '\n', '\r', '\r\n', '-', ' ', 'A', '+', '/', '*', '\u00a0', '-----', 'END', 'BEGIN '];
  for (let i = 0; i < 4000; i++) {
    let text = keys[Math.floor(next() * keys.length)]!;
    for (let edits = 1 + Math.floor(next() * 3); edits > 0; edits--) {
      const at = Math.floor(next() * (text.length + 1));
      const kind = Math.floor(next() * 3);
      const piece = pieces[Math.floor(next() * pieces.length)]!;
      text = kind === 0 ? text.slice(0, at) + piece + text.slice(at) : kind === 1 ? text.slice(0, at) + text.slice(at + 1) : text.slice(0, at) + piece + text.slice(at + 1);
    }
    mutations.push(text);
  }
  let accepted = 0;
  for (const text of [...picked, ...mutations]) {
    const now = outcome(() => publicKeyPemDer(text));
    assert.equal(now, outcome(() => before(text)), JSON.stringify(text));
    if (now.ok && now.value !== undefined) accepted++;
  }
  // The mutations reach both sides of each check: some still read, most refused.
  assert.ok(accepted > 100 && accepted < mutations.length, `accepted ${accepted}`);
});

test.run();
