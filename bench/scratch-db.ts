import { randomBytes } from 'node:crypto';
import postgres from 'postgres';

/** A new empty database on the Postgres of DATABASE_URL (default: the local one) for a profile run, and how to drop it. */
export async function scratchDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const adminUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const name = `es_profile_${randomBytes(6).toString('hex')}`;
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  return {
    url: url.toString(),
    drop: async () => {
      // BENCH_KEEP_DB=1: left for a look (its name is printed), e.g. at its plans with psql.
      if (process.env.BENCH_KEEP_DB) console.log(`[scratch] kept database ${name}`);
      else await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
  };
}
