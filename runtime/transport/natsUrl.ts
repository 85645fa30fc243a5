// Credentials written into NATS server URLs (`nats://user:pass@host:4222`, `nats://token@host`).
// The nats client ignores them, so they are taken out here: the URLs that remain are safe to log and
// to show, and the credentials travel as options. Kept free of the nats client, so the CLI's settings
// can use it without loading it.
import { conclaveError } from '../errors.ts';

export interface UrlCredentials {
  user?: string;
  pass?: string;
  token?: string;
}

/** `servers` without their user info, and the credentials they carried (the same on every URL, or an error) */
export function credentialsFromUrls(servers: readonly string[]): { servers: string[]; credentials: UrlCredentials | null } {
  let found: { key: string; credentials: UrlCredentials } | null = null;
  const stripped = servers.map((server) => {
    const at = server.lastIndexOf('@');
    if (at < 0) return server;
    const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(server)?.[0] ?? '';
    const userinfo = server.slice(scheme.length, at);
    const rest = `${scheme}${server.slice(at + 1)}`;
    const colon = userinfo.indexOf(':');
    const decode = (s: string) => {
      try {
        return decodeURIComponent(s);
      } catch {
        throw conclaveError('CONFIG', `NATS server URL ${rest}: the credentials before "@" are not valid URL encoding`);
      }
    };
    const credentials: UrlCredentials = colon < 0 ? { token: decode(userinfo) } : { user: decode(userinfo.slice(0, colon)), pass: decode(userinfo.slice(colon + 1)) };
    if (found !== null && found.key !== userinfo) {
      throw conclaveError('CONFIG', 'the NATS server URLs carry different credentials; give one set (in every URL, or with the credential flags or settings)');
    }
    found = { key: userinfo, credentials };
    return rest;
  });
  return { servers: stripped, credentials: (found as { credentials: UrlCredentials } | null)?.credentials ?? null };
}
