import { afterAll, describe, expect, it } from 'vitest';
import { freshDatabase } from '../helpers/database.js';

/**
 * PGLITE_REUSE=1 (the medium layer under `npm run mutate:sync`): one PGlite per worker, put back
 * as the template left it between files. A file must not see what the one before it left: rows,
 * sequence positions, an open transaction, or the triggers, functions, sequences and tables a
 * test of fault injection made (and, when it failed, did not drop). PGlite only (BACKEND_INDEPENDENT).
 */
describe('a reused PGlite comes back as the template', () => {
  const before = process.env.PGLITE_REUSE;
  afterAll(() => {
    if (before === undefined) delete process.env.PGLITE_REUSE;
    else process.env.PGLITE_REUSE = before;
  });

  it('rows, sequences, session state and objects a file added are gone; the PGlite is the same', async () => {
    process.env.PGLITE_REUSE = '1';
    const first = await freshDatabase();
    const p = first.pglite!;
    await p.exec(`
      insert into event_payloads (payload) values ('a'), ('b');
      create sequence leftover_seq;
      create table leftover (id int);
      create function leftover_fn() returns trigger language plpgsql as $$ begin raise exception 'left over'; end $$;
      create trigger leftover_trigger before insert on event_payloads for each row execute function leftover_fn();`);
    // Apart: in one query string, a begin would take the statements before it into its transaction.
    await p.exec(`begin; set statement_timeout = '1s';`);
    // A second database while the first is open is a PGlite of its own.
    const other = await freshDatabase();
    expect(other.pglite).not.toBe(p);
    await other.close();
    await first.close();

    const second = await freshDatabase();
    expect(second.pglite).toBe(p);
    const q = async (text: string) => (await p.query<Record<string, unknown>>(text)).rows;
    expect(await q(`select count(*)::int as n from event_payloads`)).toEqual([{ n: 0 }]);
    // The trigger is gone (an insert works) and the serial starts again at 1.
    expect(await q(`insert into event_payloads (payload) values ('c') returning id::int`)).toEqual([{ id: 1 }]);
    expect(await q(`select relname from pg_class where relname like 'leftover%' order by relname`)).toEqual([]);
    expect(await q(`select proname from pg_proc where proname = 'leftover_fn'`)).toEqual([]);
    expect(await q(`show statement_timeout`)).toEqual([{ statement_timeout: '0' }]);
    await second.close();
  });
});
