// `conclave recover --data-dir D`: offline disaster recovery (no NATS). See runtime/store/recover.ts.
import { type RecoverResult, recoverStore } from '../store/recover.ts';

export async function recoverCommand(flags: { dataDir: string; json?: boolean }): Promise<void> {
  const result = await recoverStore({ dataDir: flags.dataDir });
  process.stdout.write(flags.json ? `${JSON.stringify(result)}\n` : `${formatRecovery(result)}\n`);
}

export function formatRecovery(r: RecoverResult): string {
  const others = r.previousMembers.filter((m) => m.nodeId !== r.nodeId).map((m) => m.name);
  const lines = [
    `recovered ${r.name} (node ${r.nodeId}) as the sole voter of cluster ${r.clusterId}`,
    `  generation: ${r.previousGeneration} -> ${r.generation}   term: ${r.previousTerm} -> ${r.term}`,
    `  committed index: ${r.commitIndex} (state applied up to ${r.appliedIndex}; ${r.pendingEntries} committed entries applied on start), ${r.keys} keys`,
    `  dropped ${r.droppedEntries} uncommitted log entries`,
    `  previous members: ${r.previousMembers.map((m) => m.name).join(', ') || '(none recorded)'}`,
    'next steps:',
    `  1. start it: conclave run --name ${r.name} --data-dir ${r.dataDir}   (it elects itself)`,
    `  2. add blank nodes: conclave cluster add <name> --via ${r.name}`,
  ];
  if (others.length > 0) {
    lines.push(
      `  3. the old members (${others.join(', ')}) are stale (generation ${r.previousGeneration}) and are refused: wipe their data dirs before starting them again, then add them`,
    );
  }
  return lines.join('\n');
}
