/**
 * Why a Postgres named by DATABASE_URL could not be opened, in one sentence that says what to do:
 * the driver's error sits under Drizzle's DrizzleQueryError with a stack of 38 lines, and an
 * operator starting the service needs none of it. Null for anything else (a bug stays loud).
 * The sentence names the host, port, database and user, never the password.
 */
export function databaseOpenProblem(error: unknown, url: string): string | null {
  const cause = driverError(error);
  if (!cause) return null;
  const at = target(url);
  if (!at) return cause.code === 'ERR_INVALID_URL' ? 'DATABASE_URL is not a URL: write it as postgres://user:password@host:5432/database' : null;
  const { host, port, database, user } = at;
  const where = `${host}:${port}`;
  const who = user ? `user "${user}"` : 'the user';
  switch (cause.code) {
    case '3D000':
      return `the database "${database}" named by DATABASE_URL does not exist on ${where}: create it (createdb -h ${host} -p ${port}${user ? ` -U ${user}` : ''} ${database}) or name an existing one`;
    case 'ECONNREFUSED':
      return `nothing accepts connections on ${where} (DATABASE_URL): check that Postgres runs there and listens on that port`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `the host "${host}" of DATABASE_URL cannot be found: check the host name`;
    case 'CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `${where} (DATABASE_URL) does not answer: check the host, the port and any firewall between`;
    case '28P01':
      return `Postgres on ${where} refused the password of ${who} (DATABASE_URL): check the user name and password`;
    case '28000':
      // No such role, or no pg_hba.conf entry: the server's own words say which.
      return `Postgres on ${where} refused ${who} (${cause.message}): check the user name and password in DATABASE_URL, and pg_hba.conf`;
    case '53300':
      return `Postgres on ${where} has no connection slot left (${cause.message}): try again later, or raise max_connections`;
    case '57P03':
      return `Postgres on ${where} is starting up or shutting down: try again in a moment`;
    case '42501':
      return `${who} may not create entity-sync's tables in the database "${database}" on ${where} (${cause.message}): make it the database's owner or grant it CREATE`;
    case 'ECONNRESET':
      return `${where} (DATABASE_URL) closed the connection as it opened: check that it is Postgres, and its TLS setting (sslmode)`;
    default:
      return null;
  }
}

/** The first error in the chain that carries a string code (postgres.js, Node's sockets, URL parsing). */
function driverError(error: unknown): { code: string; message: string } | null {
  for (let e = error, depth = 0; e && typeof e === 'object' && depth < 8; depth++) {
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (typeof code === 'string') return { code, message: typeof message === 'string' ? message : '' };
    e = (e as { cause?: unknown }).cause;
  }
  return null;
}

/** Host, port, database and user of a postgres:// URL, with the driver's defaults; null when it does not parse. */
function target(url: string): { host: string; port: string; database: string; user: string } | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  const user = decodeURIComponent(u.username);
  return {
    host: u.hostname || 'localhost',
    port: u.port || '5432',
    database: decodeURIComponent(u.pathname.slice(1)) || user,
    user,
  };
}
