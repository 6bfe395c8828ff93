import { EnvelopArmor } from '@escape.tech/graphql-armor';
import { maxDepthPlugin } from '@escape.tech/graphql-armor-max-depth';
import { GraphQLError, NoSchemaIntrospectionCustomRule, type ExecutionResult, type ValidationContext } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';

/**
 * Limits on the shape of a GraphQL document, checked before anything runs (issue 7, "Hostile
 * input"). The sizes of what is inside a document's variables (batch size, property count,
 * value size) are the core's Limits; the request body size is AppOptions.maxBodyBytes.
 */
export interface HardeningOptions {
  /** Deepest selection nesting (inline fragments count as a level, as GraphQL Armor counts them). */
  maxDepth: number;
  /** Aliased fields per operation (`__typename` aliases are free). */
  maxAliases: number;
  /** Lexical tokens per document: bounds the parser's work before any rule runs. */
  maxTokens: number;
  /** Directives per operation. */
  maxDirectives: number;
  /** Mask graphql-js's "Did you mean …?" hints, which let a stranger enumerate the schema. */
  blockFieldSuggestions: boolean;
  /** Answer `__schema` / `__type`; off in production unless the schema is meant to be public. */
  introspection: boolean;
}

/**
 * Sized from what our own clients send, with room to spare: the deepest documents are the
 * client's SubmitChanges (`released { error { code } }` under an inline fragment: depth 6) and
 * its ChangesSince (about 80 tokens); none use aliases or directives. What a query may cost is
 * not Armor's (it multiplies only literal page sizes) but the schema's: Limits.maxQueryComplexity,
 * checked by Pothos complexity with page sizes from arguments and variables (builder.ts).
 */
export const DEFAULT_HARDENING: HardeningOptions = {
  maxDepth: 10,
  maxAliases: 20,
  maxTokens: 2000,
  maxDirectives: 10,
  blockFieldSuggestions: true,
  introspection: true,
};

/**
 * The depth of the standard introspection query (graphql-js getIntrospectionQuery, what
 * GraphiQL and code generators send) as GraphQL Armor counts it, every fragment spread a level:
 * 21, well over maxDepth. Selections under `__schema` may go this deep (or maxDepth, if that
 * is more) and no deeper; everything else keeps maxDepth. Armor alone skips `__schema`
 * entirely (ignoreIntrospection), which let a 44-level introspection query through.
 */
export const INTROSPECTION_DEPTH = 21;

/** The `extensions.code` of each refusal; the message says which limit and by how much. */
export const HARDENING_CODES = {
  maxDepth: 'QUERY_TOO_DEEP',
  maxAliases: 'TOO_MANY_ALIASES',
  maxTokens: 'TOO_MANY_TOKENS',
  maxDirectives: 'TOO_MANY_DIRECTIVES',
  introspection: 'INTROSPECTION_DISABLED',
  variables: 'BAD_USER_INPUT',
  syntax: 'GRAPHQL_PARSE_FAILED',
} as const;

type Limit = Exclude<keyof typeof HARDENING_CODES, 'introspection' | 'variables' | 'syntax'>;

const LIMIT_NAMES: Record<Limit, string> = {
  maxDepth: 'query depth',
  maxAliases: 'aliases',
  maxTokens: 'tokens',
  maxDirectives: 'directives',
};

/**
 * Armor's own errors carry no code and begin with "Syntax Error:" even when the syntax is fine;
 * this swaps in a coded error. A validation rule reports it, so it is answered like any other
 * validation error (and beside them); the token count runs inside the parser, which has no
 * validation context, so there it is thrown, as a syntax error would be.
 */
function reject(limit: Limit, max: number, refused?: WeakSet<ValidationContext>) {
  return (context: ValidationContext | null, armorError: GraphQLError): void => {
    // The second depth rule stays quiet about a document the first already refused.
    if (context && refused) {
      if (refused.has(context)) return;
      refused.add(context);
    }
    const found = /found (\d+(?:\.\d+)?)/.exec(armorError.message)?.[1];
    const error = new GraphQLError(`${LIMIT_NAMES[limit]} limit of ${max} exceeded${found ? ` (found ${found})` : ''}`, {
      extensions: { code: HARDENING_CODES[limit], limit: { name: limit, max, ...(found ? { found: Number(found) } : {}) } },
    });
    if (context) context.reportError(error);
    else throw error;
  };
}

/**
 * The envelop plugins that guard the GraphQL endpoint, over HTTP and on the socket alike (both
 * run through yoga's envelop). Yoga codes the rest of what it refuses itself (BAD_REQUEST,
 * GRAPHQL_VALIDATION_FAILED), but for variables of the wrong type, and syntax errors on the socket.
 */
export function hardeningPlugins(options: Partial<HardeningOptions> = {}): Plugin[] {
  const o: HardeningOptions = { ...DEFAULT_HARDENING, ...options };
  const tooDeep = new WeakSet<ValidationContext>();
  const everythingDepth = Math.max(INTROSPECTION_DEPTH, o.maxDepth);
  const armor = new EnvelopArmor({
    // Everything but `__schema` (counted as 0 here: ignoreIntrospection) to maxDepth...
    maxDepth: { n: o.maxDepth, ignoreIntrospection: true, propagateOnRejection: false, onReject: [reject('maxDepth', o.maxDepth, tooDeep)] },
    maxAliases: { n: o.maxAliases, propagateOnRejection: false, onReject: [reject('maxAliases', o.maxAliases)] },
    maxTokens: { n: o.maxTokens, propagateOnRejection: false, onReject: [reject('maxTokens', o.maxTokens)] },
    costLimit: { enabled: false },
    maxDirectives: { n: o.maxDirectives, propagateOnRejection: false, onReject: [reject('maxDirectives', o.maxDirectives)] },
    blockFieldSuggestion: { enabled: o.blockFieldSuggestions },
  });
  const plugins: Plugin[] = [
    ...(armor.protect().plugins as Plugin[]),
    // ...and every selection, `__schema` included, to the standard introspection query's depth.
    maxDepthPlugin({ n: everythingDepth, ignoreIntrospection: false, propagateOnRejection: false, onReject: [reject('maxDepth', everythingDepth, tooDeep)] }) as Plugin,
    codeRequestErrors(),
  ];
  if (!o.introspection) plugins.push(disableIntrospection());
  return plugins;
}

/**
 * Refuses `__schema` and `__type` on every transport. @graphql-yoga/plugin-disable-introspection
 * keys its switch on the HTTP request (onRequestParse), which a graphql-ws subscribe never
 * passes through, so the socket would still answer introspection; this rule runs in validate,
 * which both share.
 */
function disableIntrospection(): Plugin {
  return {
    onValidate({ addValidationRule }) {
      addValidationRule(NoSchemaIntrospectionCustomRule);
      return ({ valid, result }) => {
        if (valid) return;
        for (const error of result) {
          if (error.message.startsWith('GraphQL introspection has been disabled')) {
            (error.extensions as Record<string, unknown>).code ??= HARDENING_CODES.introspection;
          }
        }
      };
    },
  };
}

/**
 * Variables that cannot be coerced to their types (and a document naming no runnable operation)
 * come back from graphql-js as a result without `data`, and yoga gives those errors no code.
 * Syntax errors yoga codes only over HTTP (it looks for the HTTP request); this codes them on
 * the socket too. Both in place: yoga caches the error objects and throws them again.
 */
function codeRequestErrors(): Plugin {
  const mark = (result: unknown) => {
    if (isAsyncIterable(result) || !result || 'data' in (result as object)) return;
    // An error with a path came from a resolver (a subscription's subscribe): not the request's fault.
    for (const error of (result as ExecutionResult).errors ?? []) {
      if (error.path === undefined) (error.extensions as Record<string, unknown>).code ??= HARDENING_CODES.variables;
    }
  };
  return {
    onParse: () => ({ result }) => {
      if (result instanceof GraphQLError) (result.extensions as Record<string, unknown>).code ??= HARDENING_CODES.syntax;
    },
    onExecute: () => ({ onExecuteDone: ({ result }) => mark(result) }),
    onSubscribe: () => ({ onSubscribeResult: ({ result }) => mark(result) }),
  };
}
