// The transport layer's public surface: the Bus seam, its errors, and the two implementations.
export type { Bus, BusMessage, BusState, BusSubscription, RequestOptions, SubscribeOptions } from './types.ts';
export {
  BusClosedError,
  BusConnectError,
  InvalidSubjectError,
  NoRespondersError,
  PayloadTooLargeError,
  RequestTimeoutError,
} from './types.ts';
export type { BusErrorHandler, InProcessBus, InProcessBusOptions, InProcessConnectOptions } from './inProcess.ts';
export { createInProcessBus, DEFAULT_MAX_PAYLOAD } from './inProcess.ts';
export { validatePublishSubject, validateQueueName, validateSubscribeSubject } from './subjects.ts';
export type { NatsStatus, NatsTlsOptions, NatsTransportOptions } from './nats.ts';
export { connectNats, parseServers } from './nats.ts';
