// Every exception thrown while `run` runs, caught or not (the inspector pauses on each and resumes at once): for the
// tests of the paths a successful boot takes without one (under emulation each costs ms).
import * as inspector from 'node:inspector';

export function exceptionsDuring<T>(run: () => T): { result: T; thrown: string[] } {
  const thrown: string[] = [];
  const session = new inspector.Session();
  session.connect();
  session.on('Debugger.paused', (message) => {
    thrown.push(String((message.params.data as { description?: string } | undefined)?.description).split('\n')[0]!);
    session.post('Debugger.resume');
  });
  session.post('Debugger.enable');
  session.post('Debugger.setPauseOnExceptions', { state: 'all' });
  try {
    return { result: run(), thrown };
  } finally {
    session.post('Debugger.setPauseOnExceptions', { state: 'none' });
    session.disconnect();
  }
}
