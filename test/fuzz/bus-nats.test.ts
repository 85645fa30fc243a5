// Fuzz over a real nats-server, short: any mutated envelope crashes nothing (busFuzz.ts). Its own
// file, so that nothing the in-process run leaves behind lands in this one.
import { describe } from 'node:test';
import { connectNats } from '../../runtime/transport/index.ts';
import { type NatsServerHandle, natsServerSkipReason, startNatsServer } from '../helpers/natsServer.ts';
import { startFuzzCluster } from './busCluster.ts';
import { busFuzz } from './busFuzz.ts';

describe('bus fuzz over real NATS (issue 17: nothing malformed kills it)', { skip: natsServerSkipReason() }, () => {
  let nats: NatsServerHandle | undefined;
  busFuzz(
    'three controllers, each with its own connection',
    { invalid: 0, any: 30 },
    async () => {
      nats = await startNatsServer();
      const url = nats.url;
      return startFuzzCluster(() => ({ nats: { servers: url } }), await connectNats({ servers: url, name: 'fuzzer' }));
    },
    async () => nats?.stop(),
  );
});
