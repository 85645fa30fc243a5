// Types of charts.js for the Node tests (the page itself is plain JavaScript, no build step).
import type { ElkNode } from 'elkjs/lib/elk-api.js';
import type { MachineDef } from '../machines.ts';

export function elkGraph(def: MachineDef): { graph: ElkNode & { children: ElkNode[] }; keys: Map<string, string> };
export function layoutMachine(elk: unknown, def: MachineDef): Promise<unknown>;
export function displayLabel(label: string): string;
export function lightStates(svg: unknown, activeIds: string[], status: string): void;
export function flashEdges(svg: unknown, edgeKeys: string[]): void;
