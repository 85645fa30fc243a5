// The replicated service registry: a host-supplied replicated state (no XState, no KV). apply() is
// deterministic and synchronous; invalid commands are answered, never thrown, the same on every node.
import type { ApplyMeta, ReplicatedState } from 'conclave';

export interface Service {
  name: string;
  url: string;
  /** the log index of the registration: the same on every node */
  registeredAt: number;
}

export type RegistryCommand = { op: 'register'; name: string; url: string } | { op: 'deregister'; name: string };
export type RegistryResult =
  | { ok: true; op: 'register'; service: Service; replaced: boolean }
  | { ok: true; op: 'deregister'; name: string; removed: boolean }
  | { ok: false; error: string };
export type RegistryQuery = { op: 'list' } | { op: 'get'; name: string };

const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** why a command is invalid, or null: used by the HTTP layer (400) and by apply (answered) alike */
export function invalidCommand(command: unknown): string | null {
  const c = command as Partial<RegistryCommand> | null;
  if (!c || typeof c !== 'object') return 'a command must be an object';
  if (c.op !== 'register' && c.op !== 'deregister') return 'op must be "register" or "deregister"';
  if (typeof c.name !== 'string' || !NAME.test(c.name)) return `service name must match ${NAME}`;
  if (c.op === 'register') {
    if (typeof c.url !== 'string' || !/^https?:\/\/\S+$/.test(c.url) || c.url.length > 2048) return 'url must be an http(s) URL';
  }
  return null;
}

export class ServiceRegistry implements ReplicatedState<RegistryCommand, RegistryResult, RegistryQuery, unknown, Service[]> {
  private services = new Map<string, Service>();

  apply(command: RegistryCommand, meta: ApplyMeta): RegistryResult {
    const invalid = invalidCommand(command);
    if (invalid) return { ok: false, error: invalid };
    if (command.op === 'register') {
      const service = { name: command.name, url: command.url, registeredAt: meta.index };
      const replaced = this.services.has(command.name);
      this.services.set(command.name, service);
      return { ok: true, op: 'register', service, replaced };
    }
    return { ok: true, op: 'deregister', name: command.name, removed: this.services.delete(command.name) };
  }

  query(query: RegistryQuery): unknown {
    if (query?.op === 'get') return this.services.get(query.name) ?? null;
    return [...this.services.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  snapshot(): Service[] {
    return [...this.services.values()];
  }

  restore(snapshot: Service[] | null): void {
    this.services = new Map((snapshot ?? []).map((s) => [s.name, s]));
  }
}
