// A machine definition as a diagram another tool draws: Mermaid (stateDiagram-v2) or Graphviz DOT.
// Both show what the page shows: every state by its name, with what it invokes, its entry actions and
// its targetless ("internal") transitions listed inside its box; every transition with its label; and
// the transitions of the machine's root — which apply in every state — drawn from one "(any state)"
// pseudo-state, dashed, instead of from a box named after the machine that nothing enters.
import type { MachineDef, StateDef, TransitionDef } from './machines.ts';

/** The label of the pseudo-state that stands for "whatever state the machine is in". */
export const ANY_STATE = '(any state)';
const ANY_ID = 'any_state';

/** What a state's box lists under its name: invoked actors, entry actions, internal transitions. */
export function stateNotes(def: MachineDef, stateId: string): string[] {
  const s = def.states.find((x) => x.id === stateId);
  return [...(s?.invoke ?? []).map((i) => `invoke ${i}`), ...(s?.entry ?? []).map((a) => `entry ${a}`), ...internalLines(def, stateId)];
}

/** Targetless transitions of one state (or of the root): `EVENT [guard] / action, action`. */
function internalLines(def: MachineDef, sourceId: string): string[] {
  return def.internal.filter((t) => t.source === sourceId).map(internalLine);
}

export function internalLine(t: TransitionDef): string {
  return `${t.label || '(always)'}${t.actions.length ? ` / ${t.actions.join(', ')}` : ''}`;
}

/** Does the machine's root have transitions (targeted or internal) that need the pseudo-state? */
function rootTransitions(def: MachineDef): { targeted: TransitionDef[]; internal: TransitionDef[] } {
  return { targeted: def.transitions.filter((t) => t.source === def.id), internal: def.internal.filter((t) => t.source === def.id) };
}

const childrenOf = (def: MachineDef, parent: string | null): StateDef[] => def.states.filter((s) => s.parent === parent);

// ---- Mermaid (stateDiagram-v2) ----

/** Mermaid state ids: letters, digits, underscores. */
function mermaidId(def: MachineDef, stateId: string): string {
  if (stateId === def.id) return ANY_ID;
  const local = stateId.startsWith(`${def.id}.`) ? stateId.slice(def.id.length + 1) : stateId;
  return local.replace(/[^A-Za-z0-9_]/g, '_');
}

/** Labels end at the line; `:` `;` `#` `"` and braces would confuse the parser. */
function mermaidLabel(text: string): string {
  return text.replace(/[:;#{}"]/g, ' ').replace(/\s+/g, ' ').trim();
}

export function toMermaid(def: MachineDef): string {
  const lines: string[] = ['stateDiagram-v2', `  %% ${def.title} (machine "${def.id}")`, '  direction LR'];
  const describeState = (indent: string, id: string, name: string, notes: string[]) => {
    // a state with a description shows the first description line as its name unless it is named:
    // name it, so `member : invoke memberRuntime` keeps "member" as the box's title
    if (!notes.length) return;
    lines.push(`${indent}state "${mermaidLabel(name)}" as ${id}`);
    for (const note of notes) lines.push(`${indent}${id} : ${mermaidLabel(note)}`);
  };
  const emit = (parent: string | null, indent: string) => {
    const initial = parent === null ? def.initial : (def.states.find((s) => s.id === parent)?.initial ?? null);
    if (initial) lines.push(`${indent}[*] --> ${mermaidId(def, initial)}`);
    for (const s of childrenOf(def, parent)) {
      const id = mermaidId(def, s.id);
      if (childrenOf(def, s.id).length) {
        lines.push(`${indent}state ${id} {`);
        emit(s.id, `${indent}  `);
        lines.push(`${indent}}`);
      }
      describeState(indent, id, s.key, stateNotes(def, s.id));
      if (s.type === 'final') lines.push(`${indent}${id} --> [*]`);
    }
  };
  emit(null, '  ');
  const root = rootTransitions(def);
  if (root.targeted.length || root.internal.length) {
    lines.push(`  state "${ANY_STATE}" as ${ANY_ID}`);
    for (const t of root.internal) lines.push(`  ${ANY_ID} : ${mermaidLabel(internalLine(t))}`);
    lines.push('  classDef anyState stroke-dasharray 5 4, fill:#fff', `  class ${ANY_ID} anyState`);
  }
  for (const t of def.transitions) {
    for (const target of t.targets) {
      const label = mermaidLabel(t.label);
      lines.push(`  ${mermaidId(def, t.source)} --> ${mermaidId(def, target)}${label ? ` : ${label}` : ''}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

// ---- Graphviz DOT ----

const dotString = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
/** A multi-line DOT label: lines joined by `\n` (escaped inside the quoted string). */
const dotLines = (lines: string[]) => `"${lines.map((l) => l.replace(/\\/g, '\\\\').replace(/"/g, '\\"')).join('\\n')}"`;

export function toDot(def: MachineDef): string {
  const lines = [`digraph ${dotString(def.name)} {`, '  rankdir=LR;', `  label=${dotString(def.title)};`, '  node [shape=box, style=rounded];', '  __start [shape=point, label=""];'];
  const emit = (parent: string | null, indent: string) => {
    for (const s of childrenOf(def, parent)) {
      if (childrenOf(def, s.id).length) {
        lines.push(`${indent}subgraph ${dotString(`cluster_${s.id}`)} {`, `${indent}  label=${dotLines([s.key, ...stateNotes(def, s.id)])};`);
        emit(s.id, `${indent}  `);
        lines.push(`${indent}}`);
      } else {
        lines.push(`${indent}${dotString(s.id)} [label=${dotLines([s.key, ...stateNotes(def, s.id)])}${s.type === 'final' ? ', peripheries=2' : ''}];`);
      }
    }
  };
  emit(null, '  ');
  const root = rootTransitions(def);
  if (root.targeted.length || root.internal.length) {
    lines.push(`  ${dotString(def.id)} [label=${dotLines([ANY_STATE, ...root.internal.map(internalLine)])}, style="rounded,dashed"];`);
  }
  if (def.initial) lines.push(`  __start -> ${dotString(def.initial)};`);
  for (const t of def.transitions) {
    for (const target of t.targets) lines.push(`  ${dotString(t.source)} -> ${dotString(target)} [label=${dotString(t.label)}];`);
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}
