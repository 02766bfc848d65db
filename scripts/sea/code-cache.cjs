// Run by scripts/build.ts with the executable's own base Node binary: a V8 code cache is taken only by the V8, and
// with the flags, that made it. Writes the bundle wrapped as a CommonJS function (what src/sea-launcher.cjs runs)
// and its code cache with every function compiled.
//   code-cache.cjs BUNDLE WRAPPED_OUT CACHE_OUT
'use strict';
const fs = require('node:fs');
const v8 = require('node:v8');
const { Script } = require('node:vm');

const [bundle, wrappedOut, cacheOut] = process.argv.slice(2);
const source = `(function (exports, require, module, __filename, __dirname) {${fs.readFileSync(bundle, 'utf8')}\n})`;
// --no-lazy only while compiling: every function gets its bytecode, which createCachedData() then holds. Set back
// before the cache is made, so that its flag hash is the one of a normal run (V8 rejects a cache made under other
// flags; measured: left at --no-lazy, every run rejected it).
v8.setFlagsFromString('--no-lazy');
const script = new Script(source, { filename: 'sealroot.js' });
v8.setFlagsFromString('--lazy');
fs.writeFileSync(wrappedOut, source);
fs.writeFileSync(cacheOut, script.createCachedData());
