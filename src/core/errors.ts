import { scrubNul } from './json.js';
import { ERROR_CODES, type ChangeError, type ErrorCode } from './types.js';

/** A precondition failure the API reports as a typed error value, never as a masked 500. */
export class DomainError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message?: string) {
    super(message ?? ERROR_CODES[code]);
    this.name = 'DomainError';
    this.code = code;
  }
}

export function changeError(code: ErrorCode, detail?: string): ChangeError {
  // Details quote client input; what is stored and echoed must not carry NUL (see scrubNul).
  return { code, message: detail ? `${ERROR_CODES[code]}: ${scrubNul(detail)}` : ERROR_CODES[code] };
}
