// Types of model.js for the Node tests (the page itself is plain JavaScript, no build step).
export const MAX_EVENTS: number;
export interface ModelNode {
  name: string;
  actors: Map<string, { a: string; m: string | null; states: string[]; status: string; ctx?: Record<string, unknown> }>;
  status: (Record<string, unknown> & { name: string; reachable: boolean }) | null;
  reachable: boolean | null;
  dropped: number;
}
export interface Model {
  nodes: Map<string, ModelNode>;
  events: Array<Record<string, unknown> & { node: string; k: string; t: number }>;
  leaders: Array<{ t: number; node: string; term: number | null }>;
  t: number;
}
export function createModel(): Model;
export function applyInit(model: Model, init: unknown): void;
export function applyFrame(model: Model, frame: unknown): { changed: Set<string>; added: unknown[]; steps: Array<{ node: string; actor: string; edges: string[] }> };
export function leadersLit(model: Model): string[];
export function raftLeads(node: ModelNode): boolean;
export function clusterSummary(model: Model): { clusterIds: string[]; term: number; leader: string | null; commitIndex: number | null; appliedIndex: number | null; members: unknown[] };
export function modelAt(frames: unknown[], count: number): Model;
