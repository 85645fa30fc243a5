import { type Controller, startController } from 'conclave';

export async function eventsExample(dataDir: string) {
  const seen: string[] = [];
  const ctrl: Controller = await startController({ name: 'watched1', dataDir });
  ctrl.on('phaseChanged', ({ phase }) => seen.push(`phase ${phase}`));
  ctrl.on('leaderChanged', ({ leader, term }) => seen.push(`leader ${leader} in term ${term}`));
  ctrl.on('membershipChanged', ({ members }) => seen.push(`members ${members.map((m) => m.name).join(',')}`));
  const unsubscribe = ctrl.on('applied', ({ index, command, result }) => seen.push(`applied #${index} ${JSON.stringify(command)} → ${JSON.stringify(result)}`));
  await ctrl.init();
  await ctrl.waitForLeader();
  await ctrl.propose({ op: 'put', key: 'color', value: 'blue' });
  unsubscribe(); // per-entry events cost nothing while nobody listens
  await ctrl.stop();
  return seen;
}
