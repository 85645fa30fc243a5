// Where a node's admin endpoint listens. Every operation goes to `<prefix>.node.<name>.admin`; the
// ones that change nothing are answered on `<prefix>.node.<name>.read` too, so that NATS permissions
// alone can make a read-only user (allowed to publish on `<prefix>.node.*.read` only). No zod here:
// the CLI's client side loads it.
import type { AdminOp } from './adminProtocol.ts';

/** `operator.session` opens an operator session with the node (operatorSession.ts): it changes nothing of the cluster, and a reader opens one too */
export const READ_ONLY_OPS: ReadonlySet<string> = new Set<AdminOp>(['whois', 'status', 'read', 'cluster.list', 'operator.session']);

export function isReadOnlyOp(op: string): boolean {
  return READ_ONLY_OPS.has(op);
}

export function adminSubjects(prefix: string, name: string): { admin: string; read: string } {
  return { admin: `${prefix}.node.${name}.admin`, read: `${prefix}.node.${name}.read` };
}
