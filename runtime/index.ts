// The package root: what an application embedding Conclave imports.
export { startController, defaultInProcessBus, Controller } from './controller.ts';
export type { AddResult, ClusterList, ControllerOptions, ControllerStatus, TransportOption } from './controller.ts';
export type { ControllerEventName, ControllerEvents, ControllerListener } from './events.ts';
export {
  ConclaveError,
  RefusedError,
  UsageError,
  UnreachableError,
  JoinRefusedError,
  AlreadyInitializedError,
  NotAMemberError,
  NoLeaderError,
  NotLeaderError,
  OutcomeUnknownError,
  StoppingError,
  RemovedError,
  NameConflictError,
  ApplyFailedError,
  ConfigError,
  BadRequestError,
  StateMismatchError,
  conclaveError,
  EXIT,
  exitCodeFor,
} from './errors.ts';
// the replicated state: the built-in KV, or the host's own (an object, or an XState machine)
export type { AnyReplicatedState, ApplyMeta, ReplicatedState } from './state/host.ts';
export { replicatedMachine } from './state/machine.ts';
export type { MachineApplyResult, ReplicatedMachineOptions } from './state/machine.ts';
export type { KvCommand, KvQuery, KvResult } from './state/kv.ts';
export { createInProcessBus, connectNats, NoRespondersError, RequestTimeoutError } from './transport/index.ts';
export type { Bus, BusMessage, InProcessBus, NatsTransportOptions } from './transport/index.ts';
export { createLogger, silentLogger } from './log/logger.ts';
export type { Logger, LoggerOptions, LogLevel } from './log/logger.ts';
export { recoverStore, type RecoverResult } from './store/recover.ts';
export { attachInspectionPublisher, startInspectorForController } from './inspect/index.ts';
// a controller as an actor a host statechart can invoke, and the machines themselves
export { controllerActor } from './controllerActor.ts';
export type { ControllerActorCommand, ControllerActorEvent } from './controllerActor.ts';
export { bootstrapMachine } from '../machines/bootstrap/machine.ts';
export { joinMachine } from '../machines/join/machine.ts';
export { membershipMachine } from '../machines/membership/machine.ts';
export type { Phase } from '../machines/bootstrap/machine.ts';
export { raftRoleMachine } from '../machines/raft/roleMachine.ts';
export { RaftCore } from '../machines/raft/core.ts';
export { checkJoin } from '../machines/identity/index.ts';
// the client side of the admin protocol, and operator keys (over NATS a member takes a change only signed by one of its `operators.keys`)
export { adminCall } from './adminClient.ts';
export { createOperatorKey, operatorSigner } from './operatorKey.ts';
export type { AdminSigner } from './wire/adminAuth.ts';
