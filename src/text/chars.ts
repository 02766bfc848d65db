// Character classes as loops, not regular expressions. Under emulation (QEMU TCG) a boot's first regular
// expression costs ~20 ms (V8's regexp compiler, run for the first time in the process) and each later one 2-3 ms
// (measured in the guest with marks around each); the text a boot reads needs only these classes.

/**
 * Whether `c` is whitespace as a regular expression's \s means it (ECMA-262 WhiteSpace and LineTerminator), tested
 * character for character against /\s/ (test/unit/cmdline.test.ts).
 */
export function isWhitespace(c: string): boolean {
  const code = c.charCodeAt(0);
  if (code <= 0x20) return code === 0x20 || (code >= 0x09 && code <= 0x0d);
  if (code < 0xa0) return false;
  return code === 0xa0 || code === 0x1680 || (code >= 0x2000 && code <= 0x200a) || code === 0x2028 || code === 0x2029
    || code === 0x202f || code === 0x205f || code === 0x3000 || code === 0xfeff;
}

/** One or more ASCII digits and nothing else (/^[0-9]+$/). */
export function isDecimal(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x30 || code > 0x39) return false;
  }
  return true;
}

/** One or more hex digits and nothing else: /^[0-9a-f]+$/, or /^[0-9a-fA-F]+$/ with `upper`. */
export function isHex(text: string, upper = false): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    const digit = code >= 0x30 && code <= 0x39;
    const lower = code >= 0x61 && code <= 0x66;
    if (!digit && !lower && !(upper && code >= 0x41 && code <= 0x46)) return false;
  }
  return true;
}

/** Whole bytes in lowercase hex: /^([0-9a-f]{2})+$/. */
export function isLowerHexBytes(text: string): boolean {
  return text.length % 2 === 0 && isHex(text);
}
