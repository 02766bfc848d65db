// Run as PID 1 of a new PID and mount namespace by the boot test: the boot sequence with the test's digest
// source (no TPM on the host) and verity=off (no fs-verity on the host), then the real PID 1 hand-over
// (switch root, exec init) or, on failure, the real emergency path. Options come as JSON in SEALROOT_PID1_TEST.
import { boot, defaultBootSteps, handOver } from '../../src/boot.ts';
import { emergency } from '../../src/boot/handover.ts';
import { createLogger } from '../../src/log.ts';
import { oneLine } from '../../src/errors.ts';
import { mountComposefs } from '../../src/mount/composefs.ts';
import { parseDigest } from '../../src/verity/digest.ts';

interface Pid1Test {
  config: string;
  cmdline: string;
  initramfs: string;
  digest: string;
}

const options = JSON.parse(process.env.SEALROOT_PID1_TEST ?? '{}') as Pid1Test;
const log = createLogger({ kmsg: false, verbose: false });
if (process.pid !== 1) throw new Error(`boot-pid1 must run as PID 1 (is ${process.pid})`);
try {
  const result = await boot({
    configPath: options.config, cmdline: options.cmdline, initramfsRoot: options.initramfs, switchRoot: true, mountPhysicalRoot: true, log,
  }, {
    ...defaultBootSteps(),
    trustedImages: async () => [{ digest: parseDigest(options.digest) }],
    capPcr: async () => undefined,
    mountComposefs: (mountOptions) => mountComposefs({ ...mountOptions, verity: 'off' }),
  });
  handOver(result, log);
} catch (error) {
  log.error(oneLine(error));
  emergency(log);
}
