// Chooses the layout (by configuration or by the kargs present) and plans the root.
import { kargPresent, type Cmdline } from '../config/cmdline.ts';
import type { LayoutChoice } from '../config/boot-config.ts';
import { loadSetupRootConf, planComposefs } from './composefs.ts';
import { interpretPrepareRootConf, loadPrepareRootConf, planOstree } from './ostree.ts';
import { LayoutError, type RootPlan } from './plan.ts';
import type { ConfinedRoot } from '../sys/confined-root.ts';

export function chooseLayout(choice: LayoutChoice, cmdline: Cmdline): 'ostree' | 'composefs' {
  if (choice !== 'auto') return choice;
  const ostree = kargPresent(cmdline, 'ostree');
  const composefs = kargPresent(cmdline, 'composefs');
  if (ostree && composefs) throw new LayoutError('both ostree= and composefs= are on the kernel command line: set root.layout in the boot configuration');
  if (ostree) return 'ostree';
  if (composefs) return 'composefs';
  throw new LayoutError('neither ostree= nor composefs= is on the kernel command line');
}

/**
 * Plans the root; `initramfsRoot` is where prepare-root.conf / setup-root-conf.toml are looked up (default /).
 * Every path taken from the disk is resolved inside `physical` (the physical root, opened confined).
 */
export function planRoot(choice: LayoutChoice, physical: ConfinedRoot, cmdline: Cmdline, initramfsRoot = '/'): RootPlan {
  const layout = chooseLayout(choice, cmdline);
  if (layout === 'ostree') return planOstree(physical, cmdline, interpretPrepareRootConf(loadPrepareRootConf(initramfsRoot), cmdline));
  return planComposefs(physical, cmdline, loadSetupRootConf(initramfsRoot));
}
