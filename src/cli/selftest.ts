// `sealroot selftest`: proves the executable can reach the kernel it needs (shim loaded, memfd sealing).
import { SysError } from '../errors.ts';
import { closeFd, writeFully } from '../sys/io.ts';
import { addSeals, describeSeals, getSeals, IMAGE_SEALS, memfdCreate } from '../sys/memfd.ts';
import type { Command } from './command.ts';
import { parseCommandArgs } from './command.ts';

export const selftestCommand: Command = {
  name: 'selftest',
  summary: 'check that the syscall layer works here (memfd, seals)',
  usage: `Usage: sealroot selftest

Creates a memfd, writes to it, seals it and checks that a later write fails with EPERM.
Exit 0 when all of that holds.`,
  async run(argv, { stdout }) {
    parseCommandArgs(argv, {}, false);
    const fd = memfdCreate('sealroot-selftest');
    try {
      writeFully(fd, Buffer.from('sealroot'));
      addSeals(fd, IMAGE_SEALS);
      const seals = getSeals(fd);
      if ((seals & IMAGE_SEALS) !== IMAGE_SEALS) throw new Error(`seals read back as ${describeSeals(seals)}`);
      try {
        writeFully(fd, Buffer.from('x'));
        throw new Error('a write to the sealed memfd succeeded');
      } catch (error) {
        if (!(error instanceof SysError && error.code === 'EPERM')) throw error;
      }
      stdout(`ok: memfd sealed (${describeSeals(seals)}), write after seal refused with EPERM\n`);
      return 0;
    } finally {
      closeFd(fd);
    }
  },
};
