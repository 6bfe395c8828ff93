import { DomainError } from '../../core/errors.js';
import { ERROR_CODES, type ChangeError, type ErrorCode } from '../../core/types.js';
import { IN_HAND } from '../pricing.js';
import { builder } from '../builder.js';

export const ErrorCodeEnum = builder.enumType('ErrorCode', {
  description: 'Machine-readable reason for a rejected change or a failed mutation.',
  values: Object.fromEntries(Object.entries(ERROR_CODES).map(([code, description]) => [code, { description }])) as Record<ErrorCode, { description: string }>,
});

export const ErrorInterface = builder.interfaceRef<DomainError | ChangeError>('Error').implement({
  description: 'Every expected failure has a code and a sentence.',
  fields: (t) => ({
    // In hand wherever an error is answered: nothing to load.
    code: t.field({ type: ErrorCodeEnum, description: 'What went wrong, for programs.', complexity: IN_HAND, resolve: (e) => e.code }),
    message: t.exposeString('message', { description: 'What went wrong, for people.', complexity: IN_HAND }),
  }),
});

builder.objectType(DomainError, {
  name: 'DomainError',
  description: 'An expected failure: a rejected change or a mutation whose precondition failed.',
  interfaces: [ErrorInterface],
  isTypeOf: (v) => v instanceof DomainError,
});

/**
 * Why a change was rejected. Plain data, not an Error instance: GraphQL execution treats a
 * returned Error as a thrown one. Same envelope (the Error interface) as DomainError.
 */
export const ChangeRejection = builder.objectRef<ChangeError>('ChangeRejection').implement({
  description: 'Why a change was rejected.',
  interfaces: [ErrorInterface],
  isTypeOf: (v) => !(v instanceof Error) && typeof v === 'object' && v !== null && 'code' in v,
});
