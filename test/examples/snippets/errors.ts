import { AlreadyInitializedError, ConclaveError, NoLeaderError, NotAMemberError, RefusedError, startController, UnreachableError } from 'conclave';

export async function errorsExample(dataDir: string) {
  const ctrl = await startController({ name: 'careful1', dataDir });
  const outcomes: string[] = [];
  try {
    await ctrl.propose({ op: 'put', key: 'k', value: 1 });
  } catch (err) {
    // the specific class, its exit class, and the base class all match; .code and .exitCode as the CLI's
    if (err instanceof NotAMemberError && err instanceof RefusedError && err instanceof ConclaveError) outcomes.push(`${err.code} (exit ${err.exitCode})`);
  }
  await ctrl.init();
  try {
    await ctrl.init();
  } catch (err) {
    if (err instanceof AlreadyInitializedError) outcomes.push(err.code);
    else if (err instanceof NoLeaderError || err instanceof UnreachableError) outcomes.push('retry later');
    else throw err;
  }
  await ctrl.stop();
  return outcomes;
}
