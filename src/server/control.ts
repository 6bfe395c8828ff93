import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ControlAddress } from '../db/folder-lock.js';

/**
 * The operator's way into the process that owns a PGlite data folder (DESIGN "Storage and
 * scale": the operator commands go through the running service). A second HTTP listener on
 * 127.0.0.1 only, never on the service's own (possibly public) port, that takes one JSON command
 * per POST with a fresh random secret. Its port and secret are written into the folder's lock
 * file, which is 0600: whoever may read the folder may command the service, as whoever may write
 * the folder could always have changed its database; nobody else can.
 */

/** A command's answer: the lines the CLI prints, or a refusal with a code. */
export type ControlAnswer = { ok: true; lines: string[] } | { ok: false; code: string; message: string };

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

/** Listens on a free loopback port; every command goes to `handle`, one answer per request. */
export async function startControlChannel(handle: (command: unknown) => Promise<ControlAnswer>): Promise<ControlChannel> {
  const secret = randomBytes(32).toString('base64url');
  const server = createServer((req, res) => {
    const answer = (status: number, body: ControlAnswer) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'POST' || req.url !== '/command') return answer(404, { ok: false, code: 'NOT_FOUND', message: 'POST /command' });
    if (!sameSecret(req.headers.authorization ?? '', `Bearer ${secret}`)) return answer(401, { ok: false, code: 'UNAUTHENTICATED', message: 'wrong control secret' });
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) req.destroy();
      else chunks.push(chunk);
    });
    req.on('end', () => {
      let command: unknown;
      try {
        command = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return answer(400, { ok: false, code: 'BAD_REQUEST', message: 'the command is not JSON' });
      }
      handle(command).then(
        (a) => answer(200, a),
        () => answer(500, { ok: false, code: 'INTERNAL_ERROR', message: 'the command failed in the service; see its log' }),
      );
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

/** Sends one command to a holder's control channel and returns its answer. */
export function sendControlCommand(address: ControlAddress, command: unknown): Promise<ControlAnswer> {
  const body = JSON.stringify(command);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: address.port,
        method: 'POST',
        path: '/command',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${address.secret}` },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          try {
            resolve(JSON.parse(text) as ControlAnswer);
          } catch {
            reject(new Error(`the service answered ${res.statusCode} without a command answer`));
          }
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
