// Every subcommand, registered in one place and listed by --help in this order: the boot step first, then its
// parts, the image tools, the TPM tools, diagnostics. Each lives in its own file beside this one and is loaded
// only when it runs (or --help lists it): `sealroot --version` and `sealroot boot` do not evaluate the image
// writer, the TPM tools or the Node modules they need (node:crypto alone costs ~4 ms of a ~18 ms Node start).
import type { Command } from './command.ts';

export interface CommandEntry {
  name: string;
  load(): Promise<Command>;
}

export const COMMANDS: readonly CommandEntry[] = [
  { name: 'boot', load: async () => (await import('./boot.ts')).bootCommand },
  { name: 'mount', load: async () => (await import('./mount.ts')).mountCommand },
  { name: 'load', load: async () => (await import('./load.ts')).loadCommand },
  { name: 'digest', load: async () => (await import('./digest.ts')).digestCommand },
  { name: 'mkimage', load: async () => (await import('./mkimage.ts')).mkimageCommand },
  { name: 'inspect', load: async () => (await import('./inspect.ts')).inspectCommand },
  { name: 'provision', load: async () => (await import('./provision.ts')).provisionCommand },
  { name: 'unseal', load: async () => (await import('./unseal.ts')).unsealCommand },
  { name: 'approve', load: async () => (await import('./approve.ts')).approveCommand },
  { name: 'trust', load: async () => (await import('./trust.ts')).trustCommand },
  { name: 'predict', load: async () => (await import('./predict.ts')).predictCommand },
  { name: 'pcr', load: async () => (await import('./pcr.ts')).pcrCommand },
  { name: 'selftest', load: async () => (await import('./selftest.ts')).selftestCommand },
];
