import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU time (ms) the Postgres backends of database `name` on this machine have used so far, read
 * from /proc (Linux; 0 elsewhere): the server's processes show `postgres: <user> <database> ...`
 * as their command line. A difference of two readings is the database's share of a run's work,
 * far steadier on a busy machine than the run's wall time. Backends that exit in between are lost.
 */
export function postgresCpuMs(name: string): number {
  let ticks = 0;
  let dirs: string[];
  try {
    dirs = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return 0;
  }
  for (const pid of dirs) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmd.startsWith('postgres: ') || !cmd.split(' ').includes(name)) continue;
      // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // Gone meanwhile.
    }
  }
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux.
}
