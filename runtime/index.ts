// The package root: what an application embedding Conclave imports.
export { startController, defaultInProcessBus, Controller } from './controller.ts';
export type { ControllerOptions, ControllerStatus, TransportOption } from './controller.ts';
export { ConclaveError, EXIT, exitCodeFor } from './errors.ts';
export { createInProcessBus, connectNats, NoRespondersError, RequestTimeoutError } from './transport/index.ts';
export type { Bus, BusMessage, InProcessBus, NatsTransportOptions } from './transport/index.ts';
export { createLogger, silentLogger } from './log/logger.ts';
export { recoverStore, type RecoverResult } from './store/recover.ts';
export { attachInspectionPublisher, startInspectorForController } from './inspect/index.ts';
// the machines themselves, for host statecharts
export { bootstrapMachine } from '../machines/bootstrap/machine.ts';
export { raftRoleMachine } from '../machines/raft/roleMachine.ts';
export { RaftCore } from '../machines/raft/core.ts';
export { checkJoin } from '../machines/identity/index.ts';
