/**
 * A timestamptz as Postgres writes it ("2026-12-06 22:59:01.123456+00"), for columns read as text
 * to keep their microseconds (a Date keeps milliseconds): as a Date, and whether a string is one.
 */
const PG_TIMESTAMPTZ = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d{1,6})?)([+-]\d\d)(?::?(\d\d))?$/;

export function isPgTimestamp(text: string): boolean {
  return PG_TIMESTAMPTZ.test(text);
}

export function fromPgTimestamp(text: string): Date {
  const m = PG_TIMESTAMPTZ.exec(text);
  if (!m) return new Date(text);
  return new Date(`${m[1]}T${m[2]}${m[3]}:${m[4] ?? '00'}`);
}
