// `sealroot boot`: the boot sequence (src/boot.ts) as the initramfs runs it.
import { boot, defaultBootSteps, handOver } from '../boot.ts';
import { trapStopSignals } from '../boot/stop-signals.ts';
import { emergency } from '../boot/handover.ts';
import { DEFAULT_BOOT_CONFIG_PATH } from '../config/boot-config.ts';
import { oneLine } from '../errors.ts';
import { parseCommandArgs, UsageError, type Command } from './command.ts';

export const bootCommand: Command = {
  name: 'boot',
  summary: 'verify and mount the root at /sysroot (the initramfs step), optionally switch root as PID 1',
  usage: `Usage: sealroot boot [--config PATH] [--switch-root] [--cmdline TEXT]

Reads the boot configuration and /proc/cmdline, mounts /proc, /sys and /dev if they are missing (as PID 1: also
the physical root from root=, rootfstype=, rootflags=, ro/rw if nothing is mounted at the sysroot), locates the
image (ostree: ostree= and .ostree.cfs; composefs-rs: composefs=<digest> and composefs/images/), reads the trusted
set from the TPM and caps the PCR, copies the image into a sealed memfd (while the TPM answers, when composefs=
names the digest) and checks its fs-verity digest and size against the set, validates the EROFS (an unsigned
digest, or with [root] validate-image = "always"), mounts the composefs overlay with verity=require, prepares
/etc, /var and /sysroot, and puts the new root at the sysroot. Exit 0: dracut or systemd switch root. Any failure:
one line naming the step (console and kmsg), nothing left mounted, exit 1; as PID 1, an emergency shell if there
is one, else power off. SIGTERM, SIGINT or SIGHUP during the boot: the same failure path (undo, PCR cap,
boot-failed event), then exit 128+signal.

  --config PATH    the boot configuration (TOML; default ${DEFAULT_BOOT_CONFIG_PATH})
  --switch-root    only as PID 1, and required there: make the new root / and exec init= (default /sbin/init)
  --cmdline TEXT   use TEXT instead of /proc/cmdline (testing)

The trusted digest comes from the TPM; the unauthenticated sealroot.digest= karg is used only when the
configuration sets digest.source = "cmdline" and digest.allow-unauthenticated-cmdline = true.`,
  async run(argv, { log, stdout }) {
    const pid1 = process.pid === 1;
    let values;
    try {
      ({ values } = parseCommandArgs(argv, {
        config: { type: 'string', default: DEFAULT_BOOT_CONFIG_PATH },
        'switch-root': { type: 'boolean', default: false },
        cmdline: { type: 'string' },
      }, false));
      if (values['switch-root'] && !pid1) throw new UsageError('--switch-root is only for sealroot running as PID 1');
      // PID 1 must never exit (the kernel panics): as PID 1 there is no "exit 0 and let someone else switch root".
      if (pid1 && !values['switch-root']) throw new UsageError('as PID 1, sealroot boot needs --switch-root');
    } catch (error) {
      if (!pid1) throw error;
      log.error(`boot: ${oneLine(error)}`);
      return emergency(log);
    }
    // SIGTERM (systemd's start timeout), SIGINT, SIGHUP: the boot stops through its failure path, then one line
    // naming the signal and exit 128+signal.
    const stop = trapStopSignals((signal) => log.warn(`received ${signal}: stopping the boot through its failure path (undo, PCR cap, boot-failed event)`));
    let result;
    try {
      result = await boot({ configPath: values.config, cmdline: values.cmdline, switchRoot: values['switch-root'], mountPhysicalRoot: pid1, log, signal: stop.signal }, defaultBootSteps());
    } catch (error) {
      const signal = stop.received();
      if (signal !== undefined && !pid1) {
        const line = oneLine(error);
        log.error(line.includes(signal) ? line : `${line} (${signal} received)`);
        return stop.exitCode();
      }
      if (!pid1) throw error;
      log.error(oneLine(error));
      return emergency(log);
    }
    const steps = result.timings.map((t) => `${t.step} ${t.ms.toFixed(1)}`).join(', ');
    log.info(`step times (ms): ${steps}`);
    stdout(`${result.sysroot}: ${result.plan.layout} root ready (${result.loopDevice}, overlay via ${result.overlayApi})\n`);
    if (values['switch-root']) {
      try {
        return handOver(result, log);
      } catch (error) {
        log.error(oneLine(error));
        return emergency(log);
      }
    }
    return 0;
  },
};
