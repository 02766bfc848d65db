// Loader tests' shared checks: the image memfds this process holds, and a refusal that closes its memfd.
import * as fs from 'node:fs';
import * as assert from 'uvu/assert';
import { StepError } from '../../src/errors.ts';
import { loadImage, type LoadImageOptions } from '../../src/image/load.ts';
import { closeFd } from '../../src/sys/io.ts';

/** The image memfds this process holds (the loader names them memfd:sealroot-image). */
export function imageMemfds(): number {
  return fs.readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith('/memfd:sealroot-image');
    } catch (error) {
      // The directory's own fd, closed by the time it is read.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw error;
    }
  }).length;
}

/** Loading must fail at `step` with one line matching `reason`, and close the memfd it made. */
export async function refusedLoad(options: LoadImageOptions, reason: RegExp, step = 'verify-image'): Promise<StepError> {
  const before = imageMemfds();
  try {
    const image = await loadImage(options);
    closeFd(image.fd);
  } catch (error) {
    assert.instance(error, StepError);
    const stepError = error as StepError;
    assert.is(stepError.step, step);
    assert.match(stepError.reason, reason);
    assert.is(imageMemfds(), before, 'the refusal closed its memfd');
    assert.not.match(stepError.message, /\n/);
    return stepError;
  }
  assert.unreachable(`loaded although it should be refused (${reason})`);
  throw new Error('unreachable');
}
