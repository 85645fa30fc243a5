// Fuzz on the in-process bus: invalid envelopes change nothing, any envelope crashes nothing (busFuzz.ts).
import { describe } from 'node:test';
import { createInProcessBus, type InProcessBus } from '../../runtime/transport/index.ts';
import { startFuzzCluster } from './busCluster.ts';
import { busFuzz } from './busFuzz.ts';

describe('bus fuzz on the in-process bus (issue 17: nothing malformed kills it)', () => {
  let bus: InProcessBus;
  busFuzz('three controllers', { invalid: 150, any: 150 }, async () => {
    bus = createInProcessBus();
    return startFuzzCluster(() => ({ bus }), bus.connect('fuzzer'));
  });
});
