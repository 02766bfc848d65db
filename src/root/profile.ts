// Pure: whether a plan fits the configured root profile. In the "sealed" profile nothing persistent and
// unverified from the disk may become /etc or /var of the new root: the attacker writes the whole disk, and a
// writable /etc (a unit, a profile script, ld.so.preload) or /var (sysext images in /var/lib/extensions, spools)
// from it runs the attacker's code as root in a boot whose image digest is trusted.
import type { RootProfile } from '../config/boot-config.ts';
import { LayoutError, type RootPlan, type SubdirPlan } from './plan.ts';

function persistent(plan: SubdirPlan): string | undefined {
  switch (plan.kind) {
    case 'none':
    case 'transient':
      return undefined;
    case 'bind':
      return `a writable bind of ${plan.source}`;
    case 'overlay':
      return `an overlay with its upper layer in ${plan.state}`;
  }
}

const HOW: Record<RootPlan['layout'], Record<'etc' | 'var', string>> = {
  ostree: { etc: 'use [etc] transient = true in prepare-root.conf', var: 'ostree has no transient /var, so the sealed profile cannot boot an ostree deployment' },
  composefs: { etc: 'use [etc] mount = "transient" or "none" in setup-root-conf.toml', var: 'use [var] mount = "transient" or "none" in setup-root-conf.toml' },
};

/** Throws LayoutError when `profile` is "sealed" and /etc or /var would come persistent from the disk. */
export function checkProfile(profile: RootProfile, plan: RootPlan): void {
  if (profile !== 'sealed') return;
  for (const name of ['etc', 'var'] as const) {
    const what = persistent(plan[name]);
    if (what !== undefined) {
      throw new LayoutError(`the sealed profile (root.profile = "sealed") refuses a persistent, unverified /${name} `
        + `(${plan.layout} plans ${what} on the disk): ${HOW[plan.layout][name]}`);
    }
  }
}
