// Run by the hostile-disk tests in a private mount namespace (unshare --mount), under a timeout: one boot with
// the real loader, layouts, mounts and PCR cap (swtpm, from the configuration), with only the trusted images
// given by the test (or the real TPM read, `realTrust`) and verity=off (no fs-verity on the host). The stop signals
// are trapped as `sealroot boot` traps them. Prints "@@ ok" or "@@ error <the one line>", then "@@ leftovers <json>"
// (mounts under the scene made by this boot and not undone), and exits 0, 1 or 128+signal.
import * as fs from 'node:fs';
import { boot, defaultBootSteps } from '../../src/boot.ts';
import { trapStopSignals } from '../../src/boot/stop-signals.ts';
import { createLogger } from '../../src/log.ts';
import { oneLine } from '../../src/errors.ts';
import { mountComposefs } from '../../src/mount/composefs.ts';
import { parseDigest } from '../../src/verity/digest.ts';

interface HostileBoot {
  config: string;
  cmdline: string;
  initramfs: string;
  run: string;
  digest: string;
  /** Read the trusted images from the TPM (approvals from the configured state directory) instead of `digest`. */
  realTrust?: boolean;
  /** The trusted read never answers (a stuck TPM): the test sends a signal. */
  hang?: boolean;
  /** Mounts under this directory are compared before and after. */
  scene: string;
}

const options = JSON.parse(process.env.SEALROOT_HOSTILE_BOOT ?? '{}') as HostileBoot;
const log = createLogger({ kmsg: false, verbose: false });
const mounts = () => fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
  .map((line) => line.split(' ')[4] ?? '').filter((target) => target.startsWith(`${options.scene}/`)).sort();
const before = mounts();
const stop = trapStopSignals();
let code = 0;
try {
  const defaults = defaultBootSteps();
  await boot({
    configPath: options.config, cmdline: options.cmdline, initramfsRoot: options.initramfs, runDir: options.run, makeRootPrivate: false,
    log, signal: stop.signal,
  }, {
    ...defaults,
    trustedImages: options.realTrust === true ? defaults.trustedImages : async () => {
      if (options.hang === true) {
        process.stdout.write('@@ waiting\n');
        // Never settles, and (like a TPM socket that never answers) keeps the event loop alive.
        return new Promise(() => setInterval(() => undefined, 1 << 30));
      }
      return [{ digest: parseDigest(options.digest) }];
    },
    mountComposefs: (mountOptions) => mountComposefs({ ...mountOptions, verity: 'off' }),
  });
  process.stdout.write('@@ ok\n');
} catch (error) {
  process.stdout.write(`@@ error ${oneLine(error)}\n`);
  code = stop.received() === undefined ? 1 : stop.exitCode();
}
process.stdout.write(`@@ leftovers ${JSON.stringify(mounts().filter((target) => !before.includes(target)))}\n`);
process.exit(code);
