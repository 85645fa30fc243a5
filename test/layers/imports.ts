// Reads the source tree's imports (and, for the pure layer, its uses of clocks, timers and
// randomness) with the TypeScript parser, and folds them into a folder-level graph:
// machines, actors, runtime/<subfolder>, and each file at the root of runtime/ on its own.
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, normalize, relative } from 'node:path';
import ts from 'typescript';

export const ROOT = normalize(join(new URL('.', import.meta.url).pathname, '../..'));
const SOURCE_DIRS = ['machines', 'actors', 'runtime'];
const SOURCE_EXT = /\.(ts|mts|js|mjs)$/;

export interface Import {
  /** the importing file, relative to the repository root (posix) */
  file: string;
  line: number;
  specifier: string;
  /** repository-relative path for a relative specifier; null for a package or builtin */
  target: string | null;
}

/** A use of a clock, a timer, randomness or the process in a file (the pure layer must have none). */
export interface ImpureUse {
  file: string;
  line: number;
  what: string;
}

const IMPURE_GLOBALS = new Set([
  'Date',
  'performance',
  'setTimeout',
  'setInterval',
  'setImmediate',
  'clearTimeout',
  'clearInterval',
  'clearImmediate',
  'queueMicrotask',
  'process',
  'crypto',
  'fetch',
  'require',
]);

export function sourceFiles(dirs: readonly string[] = SOURCE_DIRS): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) walk(path);
      else if (SOURCE_EXT.test(entry.name)) out.push(path);
    }
  };
  for (const dir of dirs) walk(dir);
  return out.sort();
}

export function scan(file: string): { imports: Import[]; impure: ImpureUse[] } {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const imports: Import[] = [];
  const impure: ImpureUse[] = [];
  const lineOf = (node: ts.Node) => source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
  const addImport = (node: ts.Node, specifier: string) => {
    const target = specifier.startsWith('.') ? relative(ROOT, join(ROOT, dirname(file), specifier)).split('\\').join('/') : null;
    imports.push({ file, line: lineOf(node), specifier, target });
  };
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      addImport(node, node.moduleSpecifier.text);
    } else if (ts.isCallExpression(node) && node.arguments.length > 0 && ts.isStringLiteral(node.arguments[0]!)) {
      const callee = node.expression;
      if (callee.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(callee) && callee.text === 'require')) {
        addImport(node, (node.arguments[0] as ts.StringLiteral).text);
      }
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      addImport(node, node.argument.literal.text);
    }
    if (ts.isIdentifier(node) && isValueUse(node)) {
      const parent = node.parent;
      if (IMPURE_GLOBALS.has(node.text)) impure.push({ file, line: lineOf(node), what: node.text === 'Date' ? dateUse(parent) : node.text });
      if (node.text === 'Math' && ts.isPropertyAccessExpression(parent) && parent.name.text === 'random') {
        impure.push({ file, line: lineOf(node), what: 'Math.random' });
      }
      if (node.text === 'globalThis' && ts.isPropertyAccessExpression(parent) && IMPURE_GLOBALS.has(parent.name.text)) {
        impure.push({ file, line: lineOf(node), what: `globalThis.${parent.name.text}` });
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return { imports, impure };
}

/** how `Date` is used: `Date.now` and `new Date()` read the clock; `new Date(ms)`, `Date.parse` … only convert */
function dateUse(parent: ts.Node): string {
  if (ts.isPropertyAccessExpression(parent) && parent.name.text === 'now') return 'Date.now';
  if (ts.isNewExpression(parent) && (parent.arguments?.length ?? 0) === 0) return 'new Date()';
  return 'Date';
}

/** an identifier read as a value in an expression (not a declaration, a property name or a type) */
function isValueUse(node: ts.Identifier): boolean {
  const parent = node.parent;
  if (ts.isPropertyAccessExpression(parent)) return parent.expression === node;
  return (
    (ts.isCallExpression(parent) && parent.expression === node) ||
    (ts.isNewExpression(parent) && parent.expression === node) ||
    (ts.isBinaryExpression(parent) && (parent.left === node || parent.right === node)) ||
    (ts.isElementAccessExpression(parent) && parent.expression === node) ||
    ts.isShorthandPropertyAssignment(parent) ||
    ts.isSpreadElement(parent) ||
    (ts.isPropertyAssignment(parent) && parent.initializer === node) ||
    (ts.isVariableDeclaration(parent) && parent.initializer === node) ||
    ts.isArrayLiteralExpression(parent) ||
    (ts.isCallExpression(parent) && parent.arguments.includes(node))
  );
}

/** the graph node a repository path belongs to, or null outside machines/actors/runtime */
export function layerOf(path: string): string | null {
  const parts = path.split('/');
  if (parts[0] === 'machines' || parts[0] === 'actors') return parts[0];
  if (parts[0] !== 'runtime' || parts.length < 2) return null;
  return parts.length === 2 ? path : `runtime/${parts[1]}`;
}

export function isBuiltin(specifier: string): boolean {
  return specifier.startsWith('node:') || builtinModules.includes(specifier.split('/')[0]!);
}

/** the package an import names (`@scope/name` or `name`), or null for a relative import */
export function packageOf(specifier: string): string | null {
  if (specifier.startsWith('.') || specifier.startsWith('/')) return null;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

export type Graph = Map<string, Map<string, Import[]>>;

/** folder-level edges from → to, each with the imports that make it */
export function folderGraph(imports: readonly Import[]): Graph {
  const graph: Graph = new Map();
  for (const imp of imports) {
    const from = layerOf(imp.file);
    const to = imp.target === null ? null : layerOf(imp.target);
    if (from === null || to === null || from === to) continue;
    const edges = graph.get(from) ?? new Map<string, Import[]>();
    graph.set(from, edges);
    edges.set(to, [...(edges.get(to) ?? []), imp]);
  }
  return graph;
}

/** the cycles of a graph, as its strongly connected components with more than one node (Tarjan) */
export function cycles(graph: Graph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  let next = 0;
  const nodes = new Set<string>([...graph.keys(), ...[...graph.values()].flatMap((e) => [...e.keys()])]);
  const connect = (v: string) => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v)?.keys() ?? []) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) out.push(component.sort());
    }
  };
  for (const v of [...nodes].sort()) if (!index.has(v)) connect(v);
  return out;
}

/** one path around a cycle inside `component`, as "a → b → … → a" */
export function cyclePath(graph: Graph, component: readonly string[]): string {
  const inside = new Set(component);
  const start = component[0]!;
  // breadth-first from start back to start, inside the component
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of graph.get(v)?.keys() ?? []) {
      if (!inside.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let x: string | undefined = v; x !== undefined && x !== start; x = previous.get(x)) path.unshift(x);
        path.unshift(start);
        return path.join(' → ');
      }
      if (!previous.has(w)) {
        previous.set(w, v);
        queue.push(w);
      }
    }
  }
  return component.join(', ');
}
