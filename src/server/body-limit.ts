import type { Plugin } from 'graphql-yoga';
import { errorResponse, tooLarge } from './errors.js';

/**
 * The request body's size limit, as yoga's `maxRequestBodySize` enforces it (turned off in
 * app.ts), without that one's cost on every request: yoga counts every body through a
 * TransformStream and a stream pipeline, about 0.15 ms a request (each pipeline makes a
 * DOMException with its stack when it ends). A body with a content-length needs no counting:
 * Node's HTTP parser reads exactly that many bytes as the body, and a length over the limit is
 * refused here before anything is read, with a clear 413. Only a chunked body (no length) is
 * counted as it is read, as yoga does, and refused once it passes the limit.
 */
export function bodyLimit(maxBodyBytes: number): Plugin {
  return {
    onRequest({ request, endResponse, fetchAPI }) {
      const length = Number(request.headers.get('content-length') ?? 0);
      if (length > maxBodyBytes) endResponse(errorResponse(fetchAPI, 413, 'TOO_LARGE', tooLarge(maxBodyBytes, length).message));
    },
    // Yoga runs this after its own parsers are chosen (plugins come after them), so it wraps the one chosen.
    onRequestParse({ request, requestParser, setRequestParser, fetchAPI }) {
      if (request.headers.has('content-length') || request.body == null || requestParser == null) return;
      const parse = requestParser;
      setRequestParser((req) => parse(counted(req, maxBodyBytes, fetchAPI)));
    },
  };
}

/** The request with a body that fails with TOO_LARGE once more than `limit` bytes have come. */
function counted(request: Request, limit: number, fetchAPI: { Request: typeof Request; TransformStream: typeof TransformStream }): Request {
  let bytes = 0;
  // A native body takes a native TransformStream, a ponyfilled one the ponyfill's (as yoga does, graphql-yoga#4583).
  const Transform = request.body instanceof ReadableStream ? globalThis.TransformStream : fetchAPI.TransformStream;
  const body = request.body!.pipeThrough(
    new Transform<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        bytes += chunk.byteLength;
        if (bytes > limit) controller.error(tooLarge(limit));
        else controller.enqueue(chunk);
      },
    }),
  );
  return new fetchAPI.Request(request.url, { method: request.method, headers: request.headers, signal: request.signal, body, duplex: 'half' } as RequestInit);
}
