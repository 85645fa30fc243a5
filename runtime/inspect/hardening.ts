// What keeps the inspector's page and API to the person at this machine: a request is answered only
// when its Host header names the address the server listens on (a page of another site whose name
// was re-pointed at 127.0.0.1 — DNS rebinding — sends its own name, and is refused), and every
// response says: no sniffing, no framing, no referrer, and only this origin's scripts and requests.
import { hostname, networkInterfaces } from 'node:os';

/**
 * Scripts, requests and everything else from this origin only; nothing may frame the page. Styles
 * allow inline because the page sets style attributes (the lag bars' widths). 'unsafe-eval' is not
 * for the page (neither it nor elkjs's bundle evaluates strings) but for the browser tests:
 * Playwright's waitForFunction(string) evaluates its predicate in the page. No inline script is
 * allowed, so there is no way in for a string to evaluate.
 */
export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** on every response */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1'];
const WILDCARDS = new Set(['0.0.0.0', '::', '']);

/** whether a listen host (or a Host header's name) is this machine's loopback only */
export const isLoopback = (host: string) => LOOPBACK_NAMES.includes(host.toLowerCase()) || /^127\.\d+\.\d+\.\d+$/.test(host);

/**
 * Why the inspector may not listen on `listen`'s host, or null: anywhere but loopback needs `public`
 * (it shows the cluster's ids, terms, member names and messages to whoever reaches it).
 */
export function bindRefusal(listen: string, host: string, isPublic: boolean | undefined): string | null {
  if (isLoopback(host) || isPublic === true) return null;
  return `the inspector would listen on ${listen}, reachable from other machines: it shows the cluster's ids, terms, member names and messages to whoever reaches it. Listen on 127.0.0.1 (the default), or pass --inspect-public (conclave inspect: --public; config file: "inspectPublic": true) to serve it there on purpose`;
}

/**
 * The host names a request may carry for a server listening on `listenHost`: the loopback names
 * (every bind answers on them except a specific non-loopback address), the configured host, and for a
 * wildcard bind this machine's name and addresses. Lower case, IPv6 without brackets.
 */
export function allowedHostNames(listenHost: string): Set<string> {
  const host = listenHost.toLowerCase();
  const names = new Set<string>([host]);
  if (isLoopback(host) || WILDCARDS.has(host)) for (const n of LOOPBACK_NAMES) names.add(n);
  if (WILDCARDS.has(host)) {
    names.add(hostname().toLowerCase());
    for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) names.add(a.address.toLowerCase());
  }
  names.delete('');
  return names;
}

/** `Host: name[:port]` (IPv6 in brackets) → its name and port (80 when left out, as browsers do for http) */
export function parseHostHeader(header: string): { name: string; port: number } | null {
  const m = /^(?:\[([0-9a-f:.]+)\]|([a-z0-9.-]+))(?::(\d{1,5}))?$/i.exec(header.trim());
  if (!m) return null;
  return { name: (m[1] ?? m[2]!).toLowerCase(), port: m[3] === undefined ? 80 : Number(m[3]) };
}

/** why a request's Host header is refused, or null when it names this server */
export function hostRefusal(header: string | undefined, names: Set<string>, port: number): string | null {
  if (header === undefined || header === '') return 'the request has no Host header';
  const parsed = parseHostHeader(header);
  if (parsed === null || !names.has(parsed.name) || parsed.port !== port) {
    return `Host ${JSON.stringify(header.slice(0, 100))} is not this inspector's address (it answers only to its own address and port, against DNS rebinding)`;
  }
  return null;
}
