// Layering (issue 16): no module under src/ outside src/cli/ imports from src/cli/ (the CLI parses and prints; the
// domain folders sit below it). Every import and re-export is found by a tokenizer that skips comments, strings
// and template literals (so `import type`, `export ... from` and `import()` all count, and an import written in a
// comment does not), and each relative specifier is resolved to a file that must exist.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SRC = path.join(ROOT, 'src');
const CLI = path.join(SRC, 'cli');

type Token = { kind: 'word' | 'string' | 'punct'; text: string };

/** Identifiers, string literals (with their value) and punctuation; comments, templates and regexes dropped. */
function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  // A '/' starts a regex unless it follows something that ends an expression.
  const regexAllowed = (): boolean => {
    const last = tokens.at(-1);
    if (last === undefined) return true;
    if (last.kind === 'string') return false;
    if (last.kind === 'word') return ['return', 'typeof', 'case', 'do', 'else', 'in', 'of', 'new', 'delete', 'void', 'throw', 'yield', 'await'].includes(last.text);
    return !(last.text === ')' || last.text === ']' || last.text === '}');
  };
  const skipTemplate = (): void => {
    // i is just past the opening backquote; nested ${ ... } may hold further templates and strings.
    while (i < source.length) {
      const c = source[i]!;
      if (c === '\\') i += 2;
      else if (c === '`') {
        i += 1;
        return;
      } else if (c === '$' && source[i + 1] === '{') {
        i += 2;
        let depth = 1;
        while (i < source.length && depth > 0) {
          const d = source[i]!;
          if (d === '{') depth += 1;
          else if (d === '}') depth -= 1;
          else if (d === '`') {
            i += 1;
            skipTemplate();
            continue;
          } else if (d === '"' || d === "'") {
            readString(d);
            continue;
          }
          i += 1;
        }
      } else i += 1;
    }
  };
  const readString = (quote: string): string => {
    let value = '';
    i += 1;
    while (i < source.length && source[i] !== quote) {
      if (source[i] === '\\') {
        value += source[i + 1];
        i += 2;
      } else value += source[i++];
    }
    i += 1;
    return value;
  };
  while (i < source.length) {
    const c = source[i]!;
    if (/\s/.test(c)) i += 1;
    else if (source.startsWith('//', i)) i = source.indexOf('\n', i) === -1 ? source.length : source.indexOf('\n', i);
    else if (source.startsWith('/*', i)) i = source.indexOf('*/', i + 2) === -1 ? source.length : source.indexOf('*/', i + 2) + 2;
    else if (c === '"' || c === "'") tokens.push({ kind: 'string', text: readString(c) });
    else if (c === '`') {
      i += 1;
      skipTemplate();
      tokens.push({ kind: 'string', text: '' });
    } else if (c === '/' && regexAllowed()) {
      i += 1;
      let inClass = false;
      while (i < source.length && (source[i] !== '/' || inClass)) {
        if (source[i] === '\\') i += 1;
        else if (source[i] === '[') inClass = true;
        else if (source[i] === ']') inClass = false;
        i += 1;
      }
      i += 1;
      while (/[a-z]/.test(source[i] ?? '')) i += 1;
      tokens.push({ kind: 'string', text: '' });
    } else if (/[A-Za-z_$]/.test(c)) {
      const start = i;
      while (/[\w$]/.test(source[i] ?? '')) i += 1;
      tokens.push({ kind: 'word', text: source.slice(start, i) });
    } else {
      tokens.push({ kind: 'punct', text: c });
      i += 1;
    }
  }
  return tokens;
}

/** The module specifiers a TypeScript module imports or re-exports, type-only ones included. */
export function importSpecifiers(source: string): string[] {
  const tokens = tokenize(source);
  const found: string[] = [];
  for (let t = 0; t < tokens.length; t++) {
    const token = tokens[t]!;
    if (token.kind !== 'word' || (token.text !== 'import' && token.text !== 'export')) continue;
    if (tokens[t - 1]?.text === '.') continue; // a property named import/export
    const next = tokens[t + 1];
    if (token.text === 'import' && next?.kind === 'string') {
      found.push(next.text); // import 'x'
      continue;
    }
    if (token.text === 'import' && next?.text === '(' && tokens[t + 2]?.kind === 'string') {
      found.push(tokens[t + 2]!.text); // import('x')
      continue;
    }
    if (token.text === 'import' && next?.text === '.') continue; // import.meta
    // import ... from 'x' / export ... from 'x': the clause ends at 'from' + string, or at ';' without one.
    for (let u = t + 1; u < tokens.length; u++) {
      const current = tokens[u]!;
      if (current.text === ';' || (current.kind === 'word' && (current.text === 'import' || current.text === 'export'))) break;
      if (token.text === 'export' && u === t + 1 && current.text !== '*' && current.text !== '{' && current.text !== 'type') break;
      if (current.kind === 'word' && current.text === 'from' && tokens[u + 1]?.kind === 'string') {
        found.push(tokens[u + 1]!.text);
        break;
      }
    }
  }
  return found;
}

function sourceFiles(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[])
    .filter((name) => name.endsWith('.ts'))
    .map((name) => path.join(dir, name));
}

/** Every import of a module under src outside src/cli that resolves into src/cli, as "file -> specifier". */
function violations(src: string): string[] {
  const cli = path.join(src, 'cli');
  const found: string[] = [];
  for (const file of sourceFiles(src)) {
    if (file.startsWith(cli + path.sep)) continue;
    for (const specifier of importSpecifiers(fs.readFileSync(file, 'utf8'))) {
      if (!specifier.startsWith('.') && !specifier.startsWith('/')) continue; // node: builtins and packages
      const resolved = path.resolve(path.dirname(file), specifier);
      assert.ok(fs.existsSync(resolved), `${path.relative(src, file)} imports '${specifier}', which resolves to no file`);
      if (resolved === cli || resolved.startsWith(cli + path.sep)) found.push(`${path.relative(src, file)} -> ${specifier}`);
    }
  }
  return found;
}

test('the tokenizer finds every form of import and re-export, and none in comments, strings or templates', () => {
  const source = `
    import * as fs from 'node:fs';
    import type { Logger } from "../cli/log.ts";
    import { a, type B,
      c } from '../cli/multi-line.ts';
    import def, { x as y } from './def.ts';
    import './side-effect.ts';
    export { z } from '../cli/reexport.ts';
    export * from './star.ts';
    export * as ns from './star-ns.ts';
    export type { T } from './type-reexport.ts';
    const lazy = await import('../cli/lazy.ts');
    // import { no } from '../cli/comment.ts';
    /* import { no } from '../cli/block-comment.ts'; */
    const text = "import { no } from '../cli/string.ts'";
    const template = \`import { no } from '../cli/template.ts' \${ \`nested \${1}\` }\`;
    const re = /import { no } from '..\\/cli\\/regex.ts'/;
    const url = import.meta.url;
    export const value = 1;
    export function f() { return 2 / 1; }
  `;
  assert.equal(importSpecifiers(source), [
    'node:fs', '../cli/log.ts', '../cli/multi-line.ts', './def.ts', './side-effect.ts', '../cli/reexport.ts', './star.ts',
    './star-ns.ts', './type-reexport.ts', '../cli/lazy.ts',
  ]);
});

test('the check reports a domain module that imports from cli/, and not cli/ importing a domain module', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealroot-layering-'));
  try {
    for (const [name, text] of Object.entries({
      'cli/command.ts': "import { x } from '../root/ok.ts';\nexport const c = x;\n",
      'root/ok.ts': "import * as fs from 'node:fs';\nexport const x = fs.constants.O_RDONLY;\n",
      'root/bad.ts': "import type { c } from '../cli/command.ts';\nexport type C = typeof c;\n",
      'top.ts': "export { c } from './cli/command.ts';\n",
    })) {
      fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
      fs.writeFileSync(path.join(dir, name), text);
    }
    assert.equal(violations(dir).sort(), ['root/bad.ts -> ../cli/command.ts', 'top.ts -> ./cli/command.ts']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('no module under src/ outside src/cli/ imports from src/cli/', () => {
  const files = sourceFiles(SRC);
  assert.ok(files.length > 50, `only ${files.length} source files found`);
  const domain = files.filter((file) => !file.startsWith(CLI + path.sep));
  const imports = domain.reduce((count, file) => count + importSpecifiers(fs.readFileSync(file, 'utf8')).length, 0);
  assert.ok(imports > domain.length, `only ${imports} imports found in ${domain.length} files: the tokenizer is broken`);
  assert.equal(violations(SRC), []);
});

test.run();
