// A disk made hostile for one scenario: a copy of a cached disk, changed with debugfs (no mount on the host, which
// has no fs-verity), so the shared disk cache (qemu/lib/disk.ts) is not rebuilt for one case.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PHYSICAL_STATE_DIR } from './disk.ts';

/** approvals-fifo: the physical root's approvals.json (where boot.toml's [tpm] state points) is a FIFO (issue 12). */
export type DiskEdit = 'approvals-fifo';

export function editedDisk(source: string, edit: DiskEdit, dir: string): string {
  const out = path.join(dir, `disk-${edit}.img`);
  fs.copyFileSync(source, out);
  const commands = {
    'approvals-fifo': [`cd /${PHYSICAL_STATE_DIR}`, 'rm approvals.json', 'mknod approvals.json p'],
  }[edit];
  const script = path.join(dir, `debugfs-${edit}.txt`);
  fs.writeFileSync(script, `${commands.join('\n')}\n`);
  const output = execFileSync('debugfs', ['-w', '-f', script, out], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const check = execFileSync('debugfs', ['-R', `stat /${PHYSICAL_STATE_DIR}/approvals.json`, out], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (!/Type: FIFO/.test(check)) throw new Error(`debugfs did not make approvals.json a FIFO: ${output}\n${check}`);
  return out;
}
