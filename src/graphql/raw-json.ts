import { getNamedType, isEnumType, isListType, isNonNullType, isScalarType, type ExecutionResult, type GraphQLField, type GraphQLObjectType, type GraphQLOutputType, type GraphQLResolveInfo } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import { jsonShapeAt } from './plain-rows.js';

/**
 * Lists whose JSON the database wrote (a pull's versions, src/sync/changes-since.ts): the answer
 * carries the text as it came, so a page of 1,000 versions is neither decoded into rows, nor run
 * through the executor field by field, nor encoded again (issue 20: that was most of a pull's
 * CPU). The executor sees an empty list at that place; once it is done, the text takes its place
 * in the result (`useRawJson`), and the result's `stringify` (which yoga uses for HTTP answers,
 * as it does for graphql-jit's) writes it as it is. Anything else that encodes the result (the
 * socket's JSON.stringify) gets the parsed value from `toJSON`: the same answer, at the old cost.
 *
 * Only fields that answer a column as it is stored qualify (`copiesColumn`), and only a selection
 * of nothing else (plain-rows.ts `jsonShapeAt`); test/graphql/raw-json.test.ts runs random pages
 * and selections both ways and compares the answers.
 */
export class RawJson {
  /** `rows`: the JSON text of each element of a list. */
  constructor(readonly rows: readonly string[]) {}
  toJSON(): unknown {
    return JSON.parse(`[${this.rows.join(',')}]`);
  }
}

/** The lists written by the database in each execution, by response path (yoga runs one operation per context). */
const pending = new WeakMap<object, { path: (string | number)[]; raw: RawJson }[]>();

/**
 * Hands the executor an empty list for the field `info` resolves, and puts `rows` (each a JSON
 * text) in its place once the execution is done.
 */
export function rawList(ctx: object, info: GraphQLResolveInfo, rows: readonly { json: string }[]): [] {
  const path: (string | number)[] = [];
  for (let p: GraphQLResolveInfo['path'] | undefined = info.path; p; p = p.prev) path.unshift(p.key);
  const list = pending.get(ctx) ?? [];
  pending.set(ctx, list);
  list.push({ path, raw: new RawJson(rows.map((r) => r.json)) });
  return [];
}

/** JSON text of a result in which RawJson values are written as they are (as JSON.stringify writes the rest). */
export function stringifyResult(value: unknown): string {
  const out: string[] = [];
  write(value, out);
  // One copy of the answer, whatever the number of pieces.
  return out.join('');
}

function write(value: unknown, out: string[]): void {
  if (value instanceof RawJson) {
    out.push('[', value.rows.join(','), ']');
  } else if (Array.isArray(value)) {
    out.push('[');
    value.forEach((v, i) => {
      if (i > 0) out.push(',');
      if (v === undefined || typeof v === 'function' || typeof v === 'symbol') out.push('null');
      else write(v, out);
    });
    out.push(']');
  } else if (value === null || typeof value !== 'object' || typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    out.push(JSON.stringify(value) ?? 'null');
  } else {
    out.push('{');
    let first = true;
    for (const [k, v] of Object.entries(value)) {
      if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
      out.push(first ? `${JSON.stringify(k)}:` : `,${JSON.stringify(k)}:`);
      first = false;
      write(v, out);
    }
    out.push('}');
  }
}

/** Puts each execution's raw lists in its result, and gives the result a stringify that writes them as they are. */
export function useRawJson(): Plugin {
  return {
    onExecute({ args }) {
      const ctx = args.contextValue as object;
      return {
        onExecuteDone({ result }) {
          const lists = pending.get(ctx);
          if (!lists) return;
          pending.delete(ctx);
          if (isAsyncIterable(result)) return;
          const data = (result as ExecutionResult).data as Record<string | number, unknown> | null | undefined;
          let placed = false;
          for (const { path, raw } of lists) {
            // The list's parent, unless an error nulled a step of the way.
            let at: unknown = data;
            for (const key of path.slice(0, -1)) at = at && typeof at === 'object' ? (at as Record<string | number, unknown>)[key] : undefined;
            if (!at || typeof at !== 'object') continue;
            (at as Record<string | number, unknown>)[path.at(-1)!] = raw;
            placed = true;
          }
          if (placed) (result as ExecutionResult & { stringify?: (r: unknown) => string }).stringify = stringifyResult;
        },
      };
    },
  };
}

/** Output types whose value is the stored value, unchanged: the JSON the database writes of the column is the answer's. */
function copiedAsStored(type: GraphQLOutputType): boolean {
  const inner = isNonNullType(type) ? type.ofType : type;
  if (isListType(inner)) return copiedAsStored(inner.ofType);
  const named = getNamedType(inner);
  // An enum whose values are their own names (stored so); the scalars whose serialize returns what it is given.
  if (isEnumType(named)) return named.getValues().every((v) => v.value === v.name);
  return isScalarType(named) && ['ID', 'String', 'Int', 'Boolean', 'JSONObject'].includes(named.name);
}

const copying = new WeakMap<GraphQLObjectType, Map<string, string>>();

/**
 * The fields of `type` that answer one of its columns as stored: a plain `expose` of that column
 * (no resolver of its own, no auth scope of its own) of a type `copiedAsStored`. By field name,
 * the column each copies.
 */
export function copiedColumns(type: GraphQLObjectType): Map<string, string> {
  const known = copying.get(type);
  if (known) return known;
  const columns = new Map<string, string>();
  const typeScoped = (type.extensions as { pothosOptions?: { authScopes?: unknown } } | undefined)?.pothosOptions?.authScopes != null;
  for (const field of Object.values(type.getFields()) as GraphQLField<unknown, unknown>[]) {
    const ext = field.extensions as { pothosExposedField?: string; pothosOptions?: { authScopes?: unknown } } | undefined;
    if (typeScoped || !ext?.pothosExposedField || ext.pothosOptions?.authScopes != null || !copiedAsStored(field.type)) continue;
    columns.set(field.name, ext.pothosExposedField);
  }
  copying.set(type, columns);
  return columns;
}

/**
 * The JSON shape of the rows at `path` under `info` of type `typeName`, as [response key, column
 * or constant text] in response order; null when any of their fields is not a copied column.
 */
export function rawShapeAt(info: GraphQLResolveInfo, path: readonly (readonly string[])[], typeName: string): ({ key: string; column: string } | { key: string; text: string })[] | null {
  const type = info.schema.getType(typeName) as GraphQLObjectType;
  const columns = copiedColumns(type);
  const shape = jsonShapeAt(info, path, typeName, (field) => columns.has(field));
  return shape && shape.map(({ key, field }) => (field === '__typename' ? { key, text: typeName } : { key, column: columns.get(field)! }));
}
