// Test helper: hands-on controls that do nothing but record what they were asked ("stop n1") and say
// so ("done: stop n1"), for the inspector server's tests.
import type { InspectorControls } from '../../runtime/inspect/controls.ts';

export function fakeControls(done: string[]): InspectorControls {
  const act = (what: string) => async (arg: string | null) => {
    const entry = `${what} ${arg}`;
    done.push(entry);
    return `done: ${entry}`;
  };
  return {
    nodes: () => [{ name: 'n1', running: true }],
    stop: act('stop'),
    restart: act('restart'),
    transfer: act('transfer'),
    put: act('put'),
    add: act('add'),
    remove: act('remove'),
    cutOff: act('cut-off'),
    reconnect: act('reconnect'),
    pause: act('pause'),
    resume: act('resume'),
  };
}
