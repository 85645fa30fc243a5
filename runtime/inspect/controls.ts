// Hands-on controls, for the demo only: the page can stop and restart a node, pause and resume it,
// cut it off from the others, add and remove one, hand leadership over and write a key, and watch the consequences live. `conclave inspect` and `conclave run --inspect`
// serve no controls (later: behind operator credentials). The page posts one JSON action to
// `/api/control`; a request from another origin, or one that is not JSON, is refused.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { ConclaveError } from '../errors.ts';

export interface InspectorControls {
  /** the nodes the controls can act on, and whether each runs now */
  nodes(): Array<{ name: string; running: boolean; cutOff?: boolean; paused?: boolean; lost?: { cutMs: number; sent: number; received: number } }>;
  stop(name: string): Promise<string>;
  restart(name: string): Promise<string>;
  /** hand leadership to `to` (or the most up-to-date voter) */
  transfer(to: string | null): Promise<string>;
  put(key: string, value: string): Promise<string>;
  /** start a blank node named `name` and have the cluster add it (join handshake, learner, voter) */
  add(name: string): Promise<string>;
  /** have the cluster remove `name` (it is told, and stops) */
  remove(name: string): Promise<string>;
  /** drop the traffic between `name` and the others (the in-process bus only), until `reconnect` */
  cutOff(name: string): Promise<string>;
  reconnect(name: string): Promise<string>;
  /** freeze `name` as SIGSTOP would (its timers stop, its traffic is held), until `resume` */
  pause(name: string): Promise<string>;
  resume(name: string): Promise<string>;
}

const nodeName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/);

const MAX_BODY_BYTES = 4096;
const actionSchema = z.discriminatedUnion('action', [
  z.object({ action: z.literal('stop'), node: nodeName }),
  z.object({ action: z.literal('restart'), node: nodeName }),
  z.object({ action: z.literal('transfer'), to: nodeName.nullable() }),
  z.object({ action: z.literal('add'), node: nodeName }),
  z.object({ action: z.literal('remove'), node: nodeName }),
  z.object({ action: z.literal('cut-off'), node: nodeName }),
  z.object({ action: z.literal('reconnect'), node: nodeName }),
  z.object({ action: z.literal('pause'), node: nodeName }),
  z.object({ action: z.literal('resume'), node: nodeName }),
  z.object({ action: z.literal('put'), key: z.string().min(1).max(256), value: z.string().max(1024) }),
]);

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<string | null> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** `POST /api/control`: one action; the reply says what happened or why not. */
export async function handleControl(controls: InspectorControls, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== `http://${req.headers.host}`) return reply(res, 403, { ok: false, error: `controls answer this page only, not ${origin}` });
  if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) return reply(res, 415, { ok: false, error: 'send the action as application/json' });
  const text = await readBody(req);
  if (text === null) return reply(res, 413, { ok: false, error: `an action is at most ${MAX_BODY_BYTES} bytes` });
  let parsed: z.infer<typeof actionSchema>;
  try {
    parsed = actionSchema.parse(JSON.parse(text));
  } catch {
    return reply(res, 400, {
      ok: false,
      error: 'not an action: {"action":"stop"|"restart"|"add"|"remove"|"cut-off"|"reconnect"|"pause"|"resume","node"} · {"action":"transfer","to"} · {"action":"put","key","value"} (node names match ^[a-z0-9][a-z0-9_-]{0,62}$)',
    });
  }
  try {
    reply(res, 200, { ok: true, message: await perform(controls, parsed) });
  } catch (err) {
    // a refusal the person can act on (no leader now, a node that is not running…)
    if (err instanceof ConclaveError) return reply(res, 409, { ok: false, error: err.message });
    throw err;
  }
}

function perform(controls: InspectorControls, action: z.infer<typeof actionSchema>): Promise<string> {
  switch (action.action) {
    case 'stop':
      return controls.stop(action.node);
    case 'restart':
      return controls.restart(action.node);
    case 'transfer':
      return controls.transfer(action.to);
    case 'put':
      return controls.put(action.key, action.value);
    case 'add':
      return controls.add(action.node);
    case 'remove':
      return controls.remove(action.node);
    case 'cut-off':
      return controls.cutOff(action.node);
    case 'reconnect':
      return controls.reconnect(action.node);
    case 'pause':
      return controls.pause(action.node);
    case 'resume':
      return controls.resume(action.node);
  }
}
