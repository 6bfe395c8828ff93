import fc from 'fast-check';

/**
 * For `npm run mutate:sync` (vitest.sync.config.ts): every property test draws the same cases on
 * every run, so a mutant's fate does not depend on the cases a run happened to draw (with the few
 * cases it runs, a path some draws reach and others miss was covered in one run and not in the
 * next), and the incremental report's earlier results stay valid. CI keeps drawing fresh cases.
 */
fc.configureGlobal({ seed: Number(process.env.FC_SEED ?? 22) });
