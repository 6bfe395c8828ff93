import { isRole, ROLES, type Role } from '../core/auth.js';
import { DomainError } from '../core/errors.js';
import type { Db } from '../db/client.js';
import type { ControlAnswer } from '../server/control.js';
import type { SyncEvent } from '../core/events.js';
import { flushBacklog } from '../sync/flush-backlog.js';
import { createToken, listTokens, revokeToken } from '../sync/tokens.js';

/**
 * The operator commands (`npm run token`, `npm run flush`) as data: the CLI parses its arguments
 * into one, then either runs it here (Postgres, or a PGlite folder no one holds) or sends it to
 * the service that holds the folder, which runs the same function. Either way the same src/sync
 * calls, the same checks and the same printed lines.
 */
export type OperatorCommand =
  | { kind: 'token-create'; role: Role; name: string | null; deviceId: string | null; datasets: string[] | null }
  | { kind: 'token-list' }
  | { kind: 'token-revoke'; id: string }
  /** Without olderThanSeconds, whoever runs it uses its own hold timeout. */
  | { kind: 'flush'; olderThanSeconds: number | null; dataset: string | null };

export const TOKEN_USAGE = 'token commands: create --role ROLE [--name N] [--device D] [--datasets a,b] | list | revoke ID';

export interface CommandArgs {
  positionals: string[];
  values: { 'older-than'?: string | undefined; dataset?: string | undefined; role?: string | undefined; name?: string | undefined; device?: string | undefined; datasets?: string | undefined };
}

/** The command a command line asks for, or what is wrong with it (a usage error). */
export function parseCommand({ positionals, values }: CommandArgs): OperatorCommand | string {
  const [first, command, id] = positionals;
  if (first === 'flush') {
    const raw = values['older-than'];
    const dataset = values.dataset ?? null;
    if (dataset === '') return '--dataset takes a dataset name';
    if (raw === undefined) return { kind: 'flush', olderThanSeconds: null, dataset };
    const n = Number(raw);
    if (raw === '' || !Number.isFinite(n) || n < 0) return `--older-than takes a number of seconds, 0 or more, not "${raw}"`;
    return { kind: 'flush', olderThanSeconds: n, dataset };
  }
  if (first !== 'token') return `unknown command "${first}"; commands: flush, token`;
  if (command === 'create') {
    const role = values.role ?? '';
    if (!isRole(role)) return `--role takes one of ${ROLES.join(', ')}`;
    const datasets = values.datasets?.split(',').map((d) => d.trim()).filter((d) => d.length > 0) ?? null;
    return { kind: 'token-create', role, name: values.name ?? null, deviceId: values.device ?? null, datasets };
  }
  if (command === 'list') return { kind: 'token-list' };
  if (command === 'revoke' && id) return { kind: 'token-revoke', id };
  return TOKEN_USAGE;
}

const text = (v: unknown): v is string => typeof v === 'string';
const textOrNull = (v: unknown): v is string | null => v === null || text(v);

/** A command received over the control channel, checked field by field (it crossed a process boundary). */
export function checkCommand(raw: unknown): OperatorCommand | null {
  const c = (raw ?? {}) as Record<string, unknown>;
  switch (c.kind) {
    case 'token-create':
      return text(c.role) && isRole(c.role) && textOrNull(c.name) && textOrNull(c.deviceId) && (c.datasets === null || (Array.isArray(c.datasets) && c.datasets.every(text)))
        ? { kind: 'token-create', role: c.role, name: c.name, deviceId: c.deviceId, datasets: c.datasets as string[] | null }
        : null;
    case 'token-list':
      return { kind: 'token-list' };
    case 'token-revoke':
      return text(c.id) ? { kind: 'token-revoke', id: c.id } : null;
    case 'flush':
      return (c.olderThanSeconds === null || (typeof c.olderThanSeconds === 'number' && Number.isFinite(c.olderThanSeconds) && c.olderThanSeconds >= 0)) &&
        (c.dataset === undefined || textOrNull(c.dataset))
        ? { kind: 'flush', olderThanSeconds: c.olderThanSeconds, dataset: c.dataset ?? null }
        : null;
    default:
      return null;
  }
}

export interface CommandEnv {
  db: Db;
  /** Hands the command's committed events to the listeners (the service's bus, or the other instances over NOTIFY). */
  publish(events: readonly SyncEvent[]): Promise<void> | void;
  holdTimeoutSeconds: number;
}

/** What a command did: the lines to print, and for a revocation the id of the token revoked. */
export interface CommandResult {
  lines: string[];
  revoked?: string;
}

/** Runs a command. Domain errors (TOKEN_NOT_FOUND, INVALID_NAME, …) are thrown. */
export async function runCommand(command: OperatorCommand, env: CommandEnv): Promise<CommandResult> {
  switch (command.kind) {
    case 'token-create': {
      const { role, name, deviceId, datasets } = command;
      const { secret, token } = await createToken(env.db, { name: name ?? `${role} token`, role, deviceId, datasets });
      const lines = [
        `created ${token.role} token ${token.id}${token.deviceId ? ` for device ${token.deviceId}` : ''}${token.datasets ? ` on ${token.datasets.join(', ')}` : ' on every dataset'}`,
        `secret (shown once, send as "Authorization: Bearer <secret>"):`,
        secret,
      ];
      return { lines };
    }
    case 'token-list':
      return {
        lines: (await listTokens(env.db)).map((t) =>
          [t.id, t.role, t.name, t.deviceId ?? '*', t.datasets?.join(',') ?? '*', t.revokedAt ? `revoked ${t.revokedAt.toISOString()}` : 'active'].join('\t'),
        ),
      };
    case 'token-revoke': {
      const { token, events } = await revokeToken(env.db, command.id);
      // The listeners close the token's sockets and streams when they hear of it.
      await env.publish(events);
      return { lines: [`revoked token ${token.id}`], revoked: token.id };
    }
    case 'flush': {
      // Each batch's events go out as it commits, so listeners hear a long flush as it goes.
      const { forced, released } = await flushBacklog(env.db, {
        olderThanSeconds: command.olderThanSeconds ?? env.holdTimeoutSeconds,
        ...(command.dataset === null ? {} : { dataset: command.dataset }),
        onBatch: (events) => env.publish(events) });
      return { lines: [`forced ${forced} held change(s), released ${released} successor(s)`] };
    }
  }
}

/** The service's side of the control channel: a command in, its answer out (domain errors as refusals). */
export async function answerCommand(raw: unknown, env: CommandEnv): Promise<ControlAnswer> {
  const command = checkCommand(raw);
  if (!command) return { ok: false, code: 'BAD_COMMAND', message: 'not an operator command' };
  try {
    const { lines, revoked } = await runCommand(command, env);
    return { ok: true, lines, ...(revoked ? { revoked } : {}) };
  } catch (error) {
    if (error instanceof DomainError) return { ok: false, code: error.code, message: error.message };
    throw error;
  }
}
