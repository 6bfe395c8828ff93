import fc from 'fast-check';
import { describe, it } from 'vitest';
import { useSyncContext } from '../helpers/sync-context.js';
import { checkWorld, commandArbs, finish, PROPERTIES, type Real } from './model-commands.js';
import { World } from './reference-model.js';

/**
 * Model-based test of the sync rules (issue 12): random sequences of online creates, edits and
 * deletes, offline runs (several per entity, begun on a version or with an offline create) whose
 * changes arrive in any order, in batches, twice, forced flushes and pulls, run against src/sync on
 * the back end DATABASE_URL picks and against the reference model (reference-model.ts). Each
 * answer must be the model's; after the sequence, so must everything stored.
 */

const NUM_RUNS = Number(process.env.MODEL_RUNS ?? 40);

describe('the sync layer against the reference model', () => {
  const ctx = useSyncContext();

  it(`${NUM_RUNS} random sequences of commands: every answer and the stored state are the model's`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.commands(commandArbs, { maxCommands: 40, size: 'max' }), async (cmds) => {
        const setup = async () => {
          const real: Real = { ctx, dataset: await ctx.newDataset(PROPERTIES), cursor: null, pulled: 0 };
          return { model: new World(), real };
        };
        let last: { model: World; real: Real } | null = null;
        await fc.asyncModelRun(async () => (last = await setup()), cmds);
        await finish(last!.model, last!.real);
        await checkWorld(last!.model, last!.real);
      }),
      { numRuns: NUM_RUNS },
    );
  }, 300_000);
});
