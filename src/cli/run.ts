import { DomainError } from '../core/errors.js';
import { openDatabase, type Database } from '../db/client.js';
import { FolderLockedError } from '../db/folder-lock.js';
import { databaseOpenProblem } from '../db/open-errors.js';
import { postgresNotifier } from '../db/notify.js';
import { createEventBus } from '../graphql/pubsub.js';
import { ControlImpostorError, notReached, sendControlCommand } from '../server/control.js';
import type { SyncEvent } from '../core/events.js';
import { parseCommand, runCommand, type CommandArgs, type OperatorCommand } from './commands.js';

/**
 * `npm run token -- …` and `npm run flush`: where a command runs. On Postgres, here (many
 * processes share it) and the running instances hear its events over NOTIFY. On a PGlite folder,
 * in the process that owns it: this one, after taking the folder's lock, when no one holds it;
 * else the service holding it, through the control channel its lock advertises (never beside it).
 */

export interface CliConfig {
  /** postgres:// URL; unset: the PGlite folder. */
  databaseUrl: string | null;
  dataDir: string;
  /** The flush's default age when the command runs here. */
  holdTimeoutSeconds: number;
  /** How long to wait for a folder held by a process that cannot take commands (starting, or another CLI run). */
  waitSeconds?: number;
}

/** Exit codes: 0 done; 1 the command could not run (folder held, service unreachable); 2 usage or refused (a domain error). */
export async function runCli(args: CommandArgs, config: CliConfig): Promise<number> {
  const command = parseCommand(args);
  if (typeof command === 'string') return failed(2, command);
  try {
    if (config.databaseUrl) return await runHere(await openDatabase({ url: config.databaseUrl }), command, config);
    if (config.dataDir === 'memory://') return failed(2, 'DATA_DIR=memory:// keeps nothing between processes: a command there would change a database no one else sees');
    return await throughOwner(command, config);
  } catch (error) {
    if (error instanceof DomainError) return failed(2, `${error.code}: ${error.message}`);
    const problem = config.databaseUrl ? databaseOpenProblem(error, config.databaseUrl) : null;
    return failed(1, problem ?? (error instanceof Error ? error.message : String(error)));
  }
}

function failed(code: number, message: string): number {
  console.error(message);
  return code;
}

function print(lines: readonly string[]): number {
  for (const line of lines) console.log(line);
  return 0;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Takes the folder and runs the command here, or hands it to the service that holds the folder. */
async function throughOwner(command: OperatorCommand, config: CliConfig): Promise<number> {
  const deadline = Date.now() + (config.waitSeconds ?? 30) * 1000;
  for (;;) {
    let database: Database;
    try {
      database = await openDatabase({ dataDir: config.dataDir, owner: command.kind === 'flush' ? 'flush' : 'token' });
    } catch (error) {
      if (!(error instanceof FolderLockedError)) throw error;
      const control = error.holder?.control;
      if (control) {
        try {
          const answer = await sendControlCommand(control, command);
          // A revocation is said done only when the service's signed answer names the token revoked.
          if (answer.ok && command.kind === 'token-revoke' && answer.revoked?.toLowerCase() !== command.id.toLowerCase()) {
            return failed(1, `the service answered without confirming that token ${command.id} is revoked: check with npm run token -- list`);
          }
          if (answer.ok) return print(answer.lines);
          return failed(answer.code === 'INTERNAL_ERROR' ? 1 : 2, `${answer.code}: ${answer.message}`);
        } catch (sendError) {
          // Not the service: say so and send nothing more (the secret never left).
          if (sendError instanceof ControlImpostorError) return failed(1, sendError.message);
          // Refused before anything was sent: the service is stopping (or gone); look again.
          if (!notReached(sendError)) return failed(1, `${error.message}, and the command sent to it failed: ${(sendError as Error).message}`);
        }
      }
      if (Date.now() > deadline) {
        return failed(1, `${error.message} and takes no operator commands (it is starting, or is itself a command); try again when it is done`);
      }
      await pause(200);
      continue;
    }
    return runHere(database, command, config);
  }
}

async function runHere(database: Database, command: OperatorCommand, config: CliConfig): Promise<number> {
  try {
    const { lines } = await runCommand(command, { db: database.db, holdTimeoutSeconds: config.holdTimeoutSeconds, publish: (events) => tellRunningInstances(database, events) });
    return print(lines);
  } finally {
    await database.close();
  }
}

/** A command's events reach the running instances' listeners on a shared Postgres (a PGlite folder held here has none). */
async function tellRunningInstances(database: Database, events: readonly SyncEvent[]): Promise<void> {
  if (!database.sql || events.length === 0) return;
  // The change is committed whatever happens here; each instance's revocation sweep re-reads revocations.
  const bus = createEventBus({
    notifier: postgresNotifier(database.sql),
    onError: (error) => console.error(`committed, but the running instances could not be told at once (${String(error)})`),
  });
  await bus.ready;
  bus.publish(events);
  await bus.flushed();
  await bus.close();
}
