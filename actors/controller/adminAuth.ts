// The controller's side of signed admin requests: what this node signs its internal requests with,
// and the checks its admin endpoint runs before a handler — against the keys committed in this
// node's current configuration (member-signed requests, runtime/wire/adminAuth.ts: UNAUTHENTICATED)
// and against its operator keys (client operations that change the cluster,
// runtime/wire/operatorAuth.ts: UNAUTHORIZED; a node on the in-process bus takes them unsigned) —
// and the operator sessions it keeps (runtime/wire/operatorSession.ts: `operator.session` opens one).
// A refusal is counted and logged (rate-limited) as an `admin` refusal; it never changes anything.
import type { AdminAuthenticator, AdminHandler } from '../../runtime/admin.ts';
import { conclaveError } from '../../runtime/errors.ts';
import type { ControllerOptions } from '../../runtime/config/controllerOptions.ts';
import { AdminAuthVerifier, type AdminSigner, MAX_REMEMBERED_NONCES, NonceCache } from '../../runtime/wire/adminAuth.ts';
import { ADMIN_PROTOCOL, isAdminOp } from '../../runtime/wire/adminProtocol.ts';
import { OperatorAuthVerifier, type OperatorAuthRefusal } from '../../runtime/wire/operatorAuth.ts';
import { SESSION_GONE, SessionTable } from '../../runtime/wire/operatorSession.ts';
import { PairwiseKeys } from '../../runtime/wire/pairwiseKeys.ts';
import { UNSAFE_NO_PEER_AUTH } from '../../runtime/wire/peerSignature.ts';
import type { ControllerContext } from './context.ts';

/** this node's signer (none: a store without a member key, whose requests go unsigned as before) */
export function adminSigner(ctx: Pick<ControllerContext, 'store'>): AdminSigner | undefined {
  const key = UNSAFE_NO_PEER_AUTH ? undefined : ctx.store.memberKey?.();
  return key === undefined ? undefined : { key: key.privateKey };
}

const committedMember = (ctx: ControllerContext, nodeId: string) => ctx.member()?.raftStatus().membership.members.find((m) => m.nodeId === nodeId);

export function memberAuthenticator(ctx: ControllerContext, adminSubject: string): AdminAuthenticator {
  // this node's pairwise keys (a forward from a member is MACed with one), for its member key now (it changes with `recover`)
  let pairwise: PairwiseKeys | null = null;
  const pairWith = (memberKey: string) => {
    const own = UNSAFE_NO_PEER_AUTH ? undefined : ctx.store.memberKey?.();
    if (own === undefined) return null;
    if (pairwise === null || pairwise.ownPublic !== own.publicKey) pairwise = new PairwiseKeys(own.publicKey, own.privateKey);
    return pairwise.with(memberKey);
  };
  const verifier = new AdminAuthVerifier({
    pairWith,
    adminSubject,
    clusterId: () => ctx.store.identity().clusterId,
    memberKey: (nodeId) => {
      const member = committedMember(ctx, nodeId);
      // bench only: a member is heard as one without a committed key (unsigned, as before member keys)
      return member === undefined ? null : { key: UNSAFE_NO_PEER_AUTH ? undefined : member.key };
    },
  });
  return (envelope, body, data) => {
    const refusal = verifier.check(envelope, body, data);
    if (refusal === null) return null;
    const message = `${envelope.type} refused: ${refusal.detail}; only a member of this cluster may send it, signed with its member key`;
    ctx.reportRefusal('admin', { reason: `unauthenticated:${refusal.reason}`, from: envelope.from, localClusterId: ctx.store.identity().clusterId, remoteClusterId: envelope.clusterId, message });
    return conclaveError('UNAUTHENTICATED', message);
  };
}

/** how an operator gives members their first operator key (a node over NATS without one takes no change) */
export const GIVE_OPERATOR_KEYS = 'make an operator key (`conclave operator keygen --out ops.key > ops.pub`) and give every member its public key (`conclave run --operators ops.pub`, $CONCLAVE_OPERATORS, or "operators" in the config file; a running node rereads them on SIGHUP)';

/** what an operator does about each refusal */
function nextStep(refusal: OperatorAuthRefusal, node: string): string {
  switch (refusal.reason) {
    case 'no-operators':
      return `${GIVE_OPERATOR_KEYS}, then sign with --operator-key ops.key (or CONCLAVE_OPERATOR_KEY)`;
    case 'unsigned':
      return 'pass --operator-key FILE (or set CONCLAVE_OPERATOR_KEY=FILE) with a key whose public key is in the members\' "operators.keys" (for a read, "operators.readKeys" too); `conclave operator keygen --out FILE` makes one';
    case 'bad-signature':
      return 'use an operator key whose public key is in the members\' "operators.keys" (`conclave operator pubkey --key FILE` prints a key\'s), or add this key\'s there and send each member SIGHUP (it rereads its config file)';
    case 'read-only-key':
      return 'sign it with an operator key listed in the members\' "operators.keys"';
    case 'stale-time':
      return `check the clock of this machine and of ${node} (NTP), then send it again`;
    case 'replayed':
      return 'send a new request (the CLI signs each one afresh)';
    case 'unsigned-forward':
      return 'only a member whose member key is committed may forward requests here';
    case 'unknown-session':
    case 'expired-session':
      return 'open a new operator session (the library\'s operatorSigner does so by itself, once per request) or sign the request (the CLI does)';
    case 'bad-mac':
      return 'send the request again in a session of your own (the library\'s operatorSigner opens one); a MAC this node cannot check is not from the session\'s client';
  }
}

/** whether this node's admin requests come over its own process's in-process bus (the host app's own code), not from a network */
export function onInProcessBus(ctx: Pick<ControllerContext, 'opts'>): boolean {
  return ctx.opts.transport === undefined || 'bus' in ctx.opts.transport;
}

/**
 * Checks against the operator keys in force at each request (ctx.operators: they can be replaced while
 * the node runs, e.g. to revoke one: the sessions of a key no longer listed are dropped before the
 * next request is checked). Over NATS a node without keys refuses every client change
 * (`no-operators`); on the in-process bus, where only the host process speaks, it checks only when
 * keys are given. BENCH ONLY: with CONCLAVE_UNSAFE_NO_PEER_AUTH it checks nothing (peerSignature.ts).
 */
export function operatorAuthenticator(ctx: ControllerContext, adminSubject: string, sessions: SessionTable): AdminAuthenticator {
  if (UNSAFE_NO_PEER_AUTH) {
    ctx.log.warn({ env: 'CONCLAVE_UNSAFE_NO_PEER_AUTH' }, 'UNSAFE, bench only: operator authentication is off (client changes taken unsigned, from anyone)');
    return () => null;
  }
  // the requests seen, kept across a change of keys: a replay stays refused
  const nonces = new NonceCache(MAX_REMEMBERED_NONCES);
  let built: { for: ControllerOptions['operators']; verifier: OperatorAuthVerifier | null } | null = null;
  const verifierNow = (): OperatorAuthVerifier | null => {
    const operators = ctx.operators?.() ?? ctx.opts.operators;
    if (built === null || built.for !== operators) {
      const keys = operators?.keys ?? [];
      const listed = new Set([...keys, ...(operators?.readKeys ?? [])]);
      sessions.retain((key) => listed.has(key));
      // at cluster version 1 (an upgrade from release 0.1 under way) no member has a key: forwards are taken as that release took them
      const memberForwards = (nodeId: string) => {
        const member = committedMember(ctx, nodeId);
        return member !== undefined && (member.key !== undefined || (ctx.member()?.clusterVersion() ?? 1) === 1);
      };
      const verifier =
        keys.length === 0 && onInProcessBus(ctx) ? null : new OperatorAuthVerifier({ adminSubject, keys, readKeys: operators?.readKeys, reads: operators?.reads, memberForwards, sessions, now: () => ctx.clock.now() }, MAX_REMEMBERED_NONCES, nonces);
      built = { for: operators, verifier };
    }
    return built.verifier;
  };
  return (envelope, body, data) => {
    const verifier = verifierNow();
    if (verifier === null) return null;
    const refusal = verifier.check(envelope, body, data);
    if (refusal === null) return null;
    const what = isAdminOp(envelope.type) ? ADMIN_PROTOCOL[envelope.type].what : envelope.type;
    const message = `${what} refused by ${ctx.name}: not authorized: ${refusal.detail}; ${nextStep(refusal, ctx.name)}`;
    ctx.reportRefusal('admin', { reason: `unauthorized:${refusal.reason}`, from: envelope.from, localClusterId: ctx.store.identity().clusterId, remoteClusterId: envelope.clusterId, message });
    // the client opens its session again on these: it reads the reason
    return conclaveError('UNAUTHORIZED', message, SESSION_GONE.has(refusal.reason) ? { reason: refusal.reason } : undefined);
  };
}

/**
 * `operator.session`: a new session for the operator key the request names, which the authenticator
 * checked the request is signed with; refused when that key is not listed (a node that checks no
 * operator keys — the in-process bus without any — opens none).
 */
function openSession(ctx: ControllerContext, adminSubject: string, sessions: SessionTable): AdminHandler<'operator.session'> {
  return async (body) => {
    const operators = ctx.operators?.() ?? ctx.opts.operators;
    if (![...(operators?.keys ?? []), ...(operators?.readKeys ?? [])].includes(body.key)) {
      throw conclaveError('UNAUTHORIZED', `operator session refused by ${ctx.name}: not authorized: the key it names is not listed in operators.keys or operators.readKeys; ${GIVE_OPERATOR_KEYS}`);
    }
    const opened = sessions.open(body, adminSubject, ctx.clock.now());
    if (opened === null) throw conclaveError('BAD_REQUEST', `operator session refused by ${ctx.name}: the client's X25519 key (pub) is not a usable key`);
    return opened;
  };
}

/** every check of this node's admin endpoint, in order: member signatures, then (when configured) operator authentication; and the handler that opens operator sessions */
export function adminAuthenticator(ctx: ControllerContext, adminSubject: string): { authenticate: AdminAuthenticator; openSession: AdminHandler<'operator.session'> } {
  const sessions = new SessionTable();
  const member = memberAuthenticator(ctx, adminSubject);
  const operator = operatorAuthenticator(ctx, adminSubject, sessions);
  return { authenticate: (envelope, body, data) => member(envelope, body, data) ?? operator(envelope, body, data), openSession: openSession(ctx, adminSubject, sessions) };
}
