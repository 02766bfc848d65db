// The single executable's entry point (the SEA's `main`, built by scripts/build.ts): runs the bundle with the code
// cache made at build time (scripts/sea/code-cache.cjs), in which every function of the bundle is compiled.
//
// Why not Node's own SEA code cache (useCodeCache): it holds what V8 compiles when the script is compiled, the top
// level only, so each function the boot calls was still parsed and compiled at its first call. Natively that is a
// few ms; in the QEMU boot (TCG, one vCPU) it was ~0.3 s of sealroot's steps after main() (issue 15).
'use strict';
const fs = require('node:fs');
const sea = require('node:sea');
const { Script } = require('node:vm');

const script = new Script(sea.getAsset('sealroot.js', 'utf8'), {
  filename: 'sealroot.js',
  cachedData: new Uint8Array(sea.getRawAsset('sealroot.code-cache')),
});
// V8 takes a code cache only from the same V8 with the same flags (a V8 flag in NODE_OPTIONS, such as
// --stack-trace-limit, changes them): the bundle then runs all the same, compiled as it goes, slower.
if (script.cachedDataRejected) fs.writeSync(2, 'sealroot: warning: V8 rejected the code cache built into this executable (V8 flags changed?): running without it, slower\n');
script.runInThisContext()(exports, require, module, __filename, __dirname);
