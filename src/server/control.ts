import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, request, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ControlAddress } from '../db/folder-lock.js';

/**
 * The operator's way into the process that owns a PGlite data folder (DESIGN "Storage and
 * scale": the operator commands go through the running service). A second HTTP listener on
 * 127.0.0.1 only, never on the service's own (possibly public) port, that takes one JSON command
 * per exchange. Its port and a fresh random secret are written into the folder's lock file (0600,
 * in a 0700 folder): whoever may read the folder may command the service, as whoever may write
 * the folder could always have changed its database; nobody else can.
 *
 * The secret never crosses the wire, and each side proves it knows it (issue 17 item 10: during a
 * shutdown another local user bound the port the lock still named, received the secret the CLI
 * sent, and answered "revoked" for a revocation that never happened). An exchange is two requests:
 *
 *   POST /challenge {clientNonce}            -> {serverNonce, proof: HMAC(secret, server|cn|sn)}
 *   POST /command {clientNonce, serverNonce, command, mac: HMAC(secret, command|cn|sn|command)}
 *                                            -> {answer, mac: HMAC(secret, answer|cn|sn|answer)}
 *
 * The CLI checks the proof before it sends the command, and the answer's MAC before it believes
 * it; the service runs a command only with a MAC over a server nonce it issued (single use, so a
 * command cannot be replayed). An impostor learns at most which command was meant, and cannot
 * make up an answer. HMAC-SHA256 (node:crypto); the labels keep the three MACs apart.
 */

/**
 * A command's answer: the lines the CLI prints (and, for a revocation, the id of the token now
 * revoked, which the CLI checks before it says so), or a refusal with a code.
 */
export type ControlAnswer = { ok: true; lines: string[]; revoked?: string } | { ok: false; code: string; message: string };

export interface ControlChannel {
  address: ControlAddress;
  /** Stops listening; a command in flight may finish and answer within `graceMs`, then is cut off. */
  close(graceMs: number): Promise<void>;
}

/** Commands are a few fields; anything larger is not one. */
const MAX_BODY_BYTES = 64 * 1024;

function sameSecret(presented: string, expected: string): boolean {
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** HMAC-SHA256 of the fields, joined, under the channel's secret (base64url). */
function mac(secret: string, ...fields: string[]): string {
  return createHmac('sha256', secret).update(fields.join('\n')).digest('base64url');
}

/** A nonce as both sides send it: 32 random bytes, base64url. */
const NONCE = /^[\w-]{43}$/;
/** How long a server nonce waits for its command; how many may wait at once. */
const CHALLENGE_TTL_MS = 30_000;
const MAX_CHALLENGES = 1000;

/** Reads a small JSON body (at most MAX_BODY_BYTES); null when it is not JSON or too large. */
function readJson(req: IncomingMessage): Promise<Record<string, unknown> | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        resolve(null);
        req.destroy();
      } else chunks.push(chunk);
    });
    req.on('end', () => {
      try {
        const v = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
        resolve(v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null);
      } catch {
        resolve(null);
      }
    });
    req.on('error', () => resolve(null));
  });
}

/** Listens on a free loopback port; every authenticated command goes to `handle`, one answer per exchange. */
export async function startControlChannel(handle: (command: unknown) => Promise<ControlAnswer>): Promise<ControlChannel> {
  const secret = randomBytes(32).toString('base64url');
  // Server nonces issued and not used yet, with when they lapse.
  const challenges = new Map<string, number>();
  const server = createServer((req, res) => {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const refuse = (status: number, code: string, message: string) => reply(status, { ok: false, code, message });
    if (req.method !== 'POST' || (req.url !== '/challenge' && req.url !== '/command')) return refuse(404, 'NOT_FOUND', 'POST /challenge, then POST /command');
    void readJson(req).then((body) => {
      if (!body) return refuse(400, 'BAD_REQUEST', 'the request is not a JSON object');
      const clientNonce = body.clientNonce;
      if (typeof clientNonce !== 'string' || !NONCE.test(clientNonce)) return refuse(400, 'BAD_REQUEST', 'clientNonce: 32 random bytes, base64url');
      const now = Date.now();
      for (const [n, until] of challenges) if (until <= now) challenges.delete(n);
      if (req.url === '/challenge') {
        if (challenges.size >= MAX_CHALLENGES) return refuse(503, 'BUSY', 'too many challenges waiting for their command');
        const serverNonce = randomBytes(32).toString('base64url');
        challenges.set(serverNonce, now + CHALLENGE_TTL_MS);
        return reply(200, { serverNonce, proof: mac(secret, 'server', clientNonce, serverNonce) });
      }
      const { serverNonce, command } = body;
      if (typeof serverNonce !== 'string' || typeof command !== 'string' || typeof body.mac !== 'string') return refuse(400, 'BAD_REQUEST', 'serverNonce, command and mac are strings');
      // Single use, whatever follows: a captured exchange cannot be sent again.
      const issued = challenges.delete(serverNonce);
      if (!issued || !sameSecret(body.mac, mac(secret, 'command', clientNonce, serverNonce, command))) {
        return refuse(401, 'UNAUTHENTICATED', 'the command is not signed with the control secret of this service (or its challenge lapsed)');
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(command);
      } catch {
        parsed = null;
      }
      const signed = (a: ControlAnswer) => {
        const answer = JSON.stringify(a);
        reply(200, { answer, mac: mac(secret, 'answer', clientNonce, serverNonce, answer) });
      };
      handle(parsed).then(signed, () => signed({ ok: false, code: 'INTERNAL_ERROR', message: 'the command failed in the service; see its log' }));
    });
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
  return {
    address: { port, secret },
    // A command in flight finishes and answers (its caller waits), bounded like the rest of shutdown.
    close: async (graceMs) => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([closed, new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
      clearTimeout(timer);
      server.closeAllConnections();
      await closed;
    },
  };
}

/** True when the error means nothing reached the holder (it is starting or stopping): sending again is safe. */
export function notReached(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | null)?.code === 'ECONNREFUSED';
}

/** The listener on the control port did not prove it knows the lock's secret: not the service. */
export class ControlImpostorError extends Error {
  constructor(port: number, why: string) {
    super(
      `whatever answers on the control port 127.0.0.1:${port} named by the data folder's lock did not prove it is the service that holds the folder (${why}); nothing was sent to it. Another local user may be listening there: check the processes on that port`,
    );
    this.name = 'ControlImpostorError';
  }
}

/** POSTs a JSON body to the control port; the answer's status and JSON (null when it is not JSON). */
function post(port: number, path: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> | null }> {
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method: 'POST', path, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } },
      (res) => {
        let answer = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          answer += chunk;
          if (answer.length > MAX_BODY_BYTES) res.destroy(new Error('the control answer is too large'));
        });
        res.on('end', () => {
          let json: unknown = null;
          try {
            json = JSON.parse(answer);
          } catch {
            // not JSON: json stays null
          }
          resolve({ status: res.statusCode ?? 0, json: json !== null && typeof json === 'object' ? (json as Record<string, unknown>) : null });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}

/**
 * Sends one command to a holder's control channel and returns its answer, once the listener has
 * proved it knows the secret the lock names (ControlImpostorError otherwise, before the command
 * leaves) and the answer carries its MAC. The secret itself is never sent.
 */
export async function sendControlCommand(address: ControlAddress, command: unknown): Promise<ControlAnswer> {
  const clientNonce = randomBytes(32).toString('base64url');
  const challenge = await post(address.port, '/challenge', { clientNonce });
  const serverNonce = challenge.json?.serverNonce;
  const proof = challenge.json?.proof;
  if (typeof serverNonce !== 'string' || !NONCE.test(serverNonce) || typeof proof !== 'string') {
    throw new ControlImpostorError(address.port, `it answered the challenge with ${challenge.status} and no proof`);
  }
  if (!sameSecret(proof, mac(address.secret, 'server', clientNonce, serverNonce))) throw new ControlImpostorError(address.port, 'its proof is wrong');
  const body = JSON.stringify(command);
  const sent = await post(address.port, '/command', { clientNonce, serverNonce, command: body, mac: mac(address.secret, 'command', clientNonce, serverNonce, body) });
  const answer = sent.json?.answer;
  if (typeof answer !== 'string' || typeof sent.json?.mac !== 'string' || !sameSecret(sent.json.mac, mac(address.secret, 'answer', clientNonce, serverNonce, answer))) {
    // The command was sent to a listener that had proved itself: a refusal of the service's own (a lapsed challenge) is said as it is.
    const refusal = sent.json && sent.json.ok === false && typeof sent.json.code === 'string' ? `${sent.json.code}: ${String(sent.json.message)}` : `${sent.status} without a signed answer`;
    throw new Error(`the service's control channel answered ${refusal}; the command's outcome is unknown: check with npm run token -- list`);
  }
  return JSON.parse(answer) as ControlAnswer;
}
