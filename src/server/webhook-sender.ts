import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { RequestFilteringHttpAgent, RequestFilteringHttpsAgent } from 'request-filtering-agent';
import { Webhook } from 'standardwebhooks';
import type { Sender, SendResult, WebhookRequest } from '../sync/webhook-delivery.js';

/**
 * One webhook request as the Standard Webhooks spec has it: the body, `webhook-id` (the event's
 * stable id), `webhook-timestamp` and `webhook-signature` (`v1,` + base64 HMAC-SHA256 of
 * `id.timestamp.body` with the webhook's secret, made by the spec's own `standardwebhooks`
 * package). 2xx is delivered; anything else, a redirect included (never followed), a refused
 * connection or no answer within `timeoutMs`, is a failed attempt.
 *
 * The address: request-filtering-agent resolves the host itself and hands the connection the
 * very address it checked, at each delivery (no keep-alive, so no socket outlives its check): a
 * name that resolves to a public address when checked cannot rebind to a private one when used.
 * With `denyPrivate` loopback, private, link-local and other non-unicast addresses are refused.
 */
export function webhookSender(opts: { timeoutMs: number; denyPrivate: boolean; userAgent?: string }): Sender {
  const filter = { allowPrivateIPAddress: !opts.denyPrivate, allowMetaIPAddress: !opts.denyPrivate, keepAlive: false };
  const agents = { http: new RequestFilteringHttpAgent(filter), https: new RequestFilteringHttpsAgent(filter) };
  const userAgent = opts.userAgent ?? 'entity-sync-webhooks';
  return (req: WebhookRequest) =>
    new Promise<SendResult>((resolve) => {
      let url: URL;
      try {
        url = new URL(req.url);
      } catch {
        return resolve({ ok: false, status: null, error: 'the URL does not parse' });
      }
      const now = new Date();
      let signature: string;
      try {
        signature = new Webhook(req.secret).sign(req.eventId, now, req.body);
      } catch (error) {
        return resolve({ ok: false, status: null, error: `cannot sign: ${(error as Error).message}` });
      }
      const https = url.protocol === 'https:';
      const body = Buffer.from(req.body);
      const signal = AbortSignal.timeout(opts.timeoutMs);
      const outgoing = (https ? httpsRequest : httpRequest)(
        url,
        {
          method: 'POST',
          agent: https ? agents.https : agents.http,
          signal,
          headers: {
            'content-type': 'application/json',
            'content-length': body.length,
            'user-agent': userAgent,
            'webhook-id': req.eventId,
            'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
            'webhook-signature': signature,
          },
        },
        (res: IncomingMessage) => {
          const status = res.statusCode ?? 0;
          // A little of the answer, for the delivery's last error; the rest is not read.
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            if (text.length < 300) text += chunk;
            else res.destroy();
          });
          const done = () => {
            if (status >= 200 && status < 300) return resolve({ ok: true, status });
            const where = status >= 300 && status < 400 ? `; redirects are not followed (to ${String(res.headers.location ?? 'nowhere').slice(0, 200)})` : '';
            resolve({ ok: false, status, error: `HTTP ${status}${where}${text ? `: ${text.replace(/\s+/g, ' ').trim().slice(0, 200)}` : ''}` });
          };
          res.on('end', done);
          res.on('close', done);
          res.on('error', done);
        },
      );
      outgoing.on('error', (error: Error & { code?: string }) => {
        if (signal.aborted) return resolve({ ok: false, status: null, error: `no answer within ${opts.timeoutMs / 1000} s` });
        // The filtering agent's refusal, said as what to do about it.
        const refused = /^DNS lookup (\S+?)\(.*is not allowed/.exec(error.message);
        if (refused) return resolve({ ok: false, status: null, error: `the receiver's address ${refused[1]} is not public (loopback, private, link-local…), and WEBHOOK_DENY_PRIVATE refuses it` });
        resolve({ ok: false, status: null, error: error.message || error.code || String(error) });
      });
      outgoing.end(body);
    });
}
