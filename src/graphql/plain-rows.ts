import SchemaBuilder, { BasePlugin, type PothosOutputFieldConfig, type SchemaTypes } from '@pothos/core';
import { defaultFieldResolver, getNamedType, isAbstractType, isObjectType, Kind, type GraphQLFieldResolver, type GraphQLObjectType, type FieldNode, type GraphQLResolveInfo, type SelectionSetNode } from 'graphql';

/**
 * Rows a resolver read itself with exactly the columns the selection needs (a pull's page,
 * src/sync/changes-since.ts), handed to the graph as plain objects.
 *
 * plugin-drizzle checks, for every column field of every row, that the row was loaded by the
 * query it planned (a lookup by response path), and otherwise reloads it: for a page of 1,000
 * versions that check was most of the time GraphQL spent on it. A row marked plain resolves a
 * field that selects only columns straight from the columns it carries; a field that needs a
 * relation or a computed value (Version.entity), or a column the row lacks, goes the plugin's way
 * (its loader reloads the row by its key, batched), so the answer is the same either way.
 */
const PLAIN = Symbol('plain row');

/** Marks rows as plain (each must carry its primary key, for the fields that reload it). */
export function plainRows<R extends object>(rows: R[]): R[] {
  for (const row of rows) (row as Record<symbol, boolean>)[PLAIN] = true;
  return rows;
}

type Select = { columns?: Record<string, unknown>; with?: unknown; extras?: unknown } | undefined;

/** The columns a field of a drizzle object reads, when it reads nothing else (else null). */
function columnsOnly(select: unknown): string[] | null {
  if (!select || typeof select !== 'object') return null;
  const s = select as Select & Record<string, unknown>;
  if (Object.keys(s).some((k) => k !== 'columns')) return null;
  return Object.keys(s.columns ?? {});
}

/** The columns a field of type `type` reads when it reads columns only, else null. */
export function fieldColumns(type: GraphQLObjectType, field: string): string[] | null {
  return columnsOnly(type.getFields()[field]?.extensions?.pothosDrizzleSelect);
}

export class PlainRowsPlugin<Types extends SchemaTypes> extends BasePlugin<Types> {
  override wrapResolve(resolver: GraphQLFieldResolver<unknown, Types['Context'], object>, fieldConfig: PothosOutputFieldConfig<Types>): GraphQLFieldResolver<unknown, Types['Context'], object> {
    const columns = columnsOnly(fieldConfig.extensions?.pothosDrizzleSelect);
    if (!columns) return resolver;
    // The field's own resolver, without plugin-drizzle's wrapper (this plugin sits just outside it).
    const own = (fieldConfig.resolve ?? defaultFieldResolver) as GraphQLFieldResolver<unknown, Types['Context'], object>;
    const [only] = columns;
    // Most fields read one column.
    const carries = columns.length === 1 ? (row: object) => only! in row : (row: object) => columns.every((c) => c in row);
    return (parent, args, ctx, info) =>
      (parent as Record<symbol, unknown>)[PLAIN] === true && carries(parent as object) ? own(parent, args, ctx, info) : resolver(parent, args, ctx, info);
  }
}

export const PLAIN_ROWS_PLUGIN = 'plainRows' as const;
SchemaBuilder.registerPlugin(PLAIN_ROWS_PLUGIN, PlainRowsPlugin);

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  export namespace PothosSchemaTypes {
    export interface Plugins<Types extends SchemaTypes> {
      plainRows: PlainRowsPlugin<Types>;
    }
  }
}

/**
 * The columns the selection under the field `info` resolves reads of the rows at `path` (field
 * names, through fragments and union members), each row of type `typeName`: those of the fields
 * that read columns only. Directives are not looked at: a column too many costs only its bytes.
 */
export function columnsAt(info: GraphQLResolveInfo, path: readonly (readonly string[])[], typeName: string): string[] {
  return once(info, `columns:${typeName}:${JSON.stringify(path)}`, () => {
    const target = objectType(info, typeName);
    const found = new Set<string>();
    for (const set of rowSets(info, path)) {
      fieldsNamed(info, set, typeName, null, (name) => {
        for (const c of fieldColumns(target, name) ?? []) found.add(c);
      });
    }
    return [...found];
  });
}

/** One row field of a JSON shape: its response key, and the field it answers (`__typename` too). */
export interface ShapeField {
  key: string;
  field: string;
}

/**
 * The response keys and fields the rows at `path` under the field `info` select, in response
 * order, when every selection of such rows is the same list of fields that `copiesColumn` says
 * answer a column as it is stored (so the rows' JSON can be written by the database,
 * src/graphql/raw-json.ts); else null, and the rows go through the executor. Conservative: a
 * directive, a field with arguments or a sub-selection, or two selections that differ, and the
 * answer is null (the general path is always right).
 */
export function jsonShapeAt(info: GraphQLResolveInfo, path: readonly (readonly string[])[], typeName: string, copiesColumn: (field: string) => boolean): ShapeField[] | null {
  return once(info, `json:${typeName}:${JSON.stringify(path)}`, () => {
    let shape: ShapeField[] | null = null;
    for (const set of rowSets(info, path)) {
      const own = shapeOf(info, set, typeName, copiesColumn);
      if (!own || (shape && JSON.stringify(own) !== JSON.stringify(shape))) return null;
      shape = own;
    }
    return shape;
  });
}

/** The fields of one selection set of rows, merged by response key as the executor merges them (null: not plain). */
function shapeOf(info: GraphQLResolveInfo, set: SelectionSetNode | undefined, typeName: string, copiesColumn: (field: string) => boolean): ShapeField[] | null {
  const fields = new Map<string, string>();
  const visit = (s: SelectionSetNode | undefined, seen: Set<string>): boolean => {
    for (const sel of s?.selections ?? []) {
      if (sel.directives?.length) return false;
      if (sel.kind === Kind.FIELD) {
        const key = sel.alias?.value ?? sel.name.value;
        const name = sel.name.value;
        if (sel.arguments?.length || sel.selectionSet || (name !== '__typename' && !copiesColumn(name))) return false;
        // The same key twice names the same field (validation): the first place counts.
        if (!fields.has(key)) fields.set(key, name);
        continue;
      }
      const fragment = sel.kind === Kind.INLINE_FRAGMENT ? sel : info.fragments[sel.name.value];
      if (!fragment || fragment.directives?.length) return false;
      if (sel.kind === Kind.FRAGMENT_SPREAD) {
        if (seen.has(sel.name.value)) continue;
        seen.add(sel.name.value);
      }
      if (!applies(info, fragment.typeCondition?.name.value, typeName)) continue;
      if (!visit(fragment.selectionSet, seen)) return false;
    }
    return true;
  };
  if (!set || !visit(set, new Set())) return null;
  return [...fields].map(([key, field]) => ({ key, field }));
}

// The same document (yoga caches parsed documents) asks for the same things: walked once per set
// of field nodes. Not per first node alone: `@include(if: $v)` on a second field of the same
// response key merges it in one request and not in the next, with the same first node.
const walked = new WeakMap<FieldNode, Map<string, unknown>>();

function once<T>(info: GraphQLResolveInfo, key: string, compute: () => T): T {
  const [first, ...rest] = info.fieldNodes;
  const byNode = walked.get(first!) ?? new Map<string, unknown>();
  walked.set(first!, byNode);
  // Nodes without a location (a document built in code) are not told apart: walked each time.
  if (rest.some((n) => !n.loc)) return compute();
  const full = rest.length === 0 ? key : `${key}@${rest.map((n) => n.loc!.start).join(',')}`;
  if (byNode.has(full)) return byNode.get(full) as T;
  const value = compute();
  byNode.set(full, value);
  return value;
}

function objectType(info: GraphQLResolveInfo, typeName: string): GraphQLObjectType {
  const target = info.schema.getType(typeName);
  if (!isObjectType(target)) throw new Error(`${typeName} is not an object type`);
  return target;
}

/** Calls `visit` with the field nodes of `names` (all when null) under `set`, for a parent of type `parentName` (object, or abstract: then any member). */
function fieldsNamed(info: GraphQLResolveInfo, set: SelectionSetNode | undefined, parentName: string, names: readonly string[] | null, visit: (name: string, node: SelectionSetNode | undefined) => void, seen = new Set<string>()): void {
  for (const sel of set?.selections ?? []) {
    if (sel.kind === Kind.FIELD) {
      if (names === null || names.includes(sel.name.value)) visit(sel.name.value, sel.selectionSet);
    } else {
      const fragment = sel.kind === Kind.INLINE_FRAGMENT ? sel : info.fragments[sel.name.value];
      if (!fragment || (sel.kind === Kind.FRAGMENT_SPREAD && seen.has(sel.name.value))) continue;
      if (sel.kind === Kind.FRAGMENT_SPREAD) seen.add(sel.name.value);
      if (!applies(info, fragment.typeCondition?.name.value, parentName)) continue;
      fieldsNamed(info, fragment.selectionSet, parentName, names, visit, seen);
    }
  }
}

function applies(info: GraphQLResolveInfo, condition: string | undefined, typeName: string): boolean {
  if (!condition || condition === typeName) return true;
  const c = info.schema.getType(condition);
  const t = info.schema.getType(typeName);
  if (!c || !t) return false;
  // A condition on an abstract type applies to a member; under an abstract parent, any member's condition applies.
  if (isAbstractType(c) && isObjectType(t)) return info.schema.isSubType(c, t);
  return isAbstractType(t);
}

/** The selection sets of the rows at each of `paths` under the field `info` resolves, through fragments and union members. */
function rowSets(info: GraphQLResolveInfo, paths: readonly (readonly string[])[]): (SelectionSetNode | undefined)[] {
  const sets: (SelectionSetNode | undefined)[] = [];
  const walk = (from: (SelectionSetNode | undefined)[], parentName: string, rest: readonly string[]): void => {
    for (const set of from) {
      if (rest.length === 0) {
        sets.push(set);
        continue;
      }
      const [head, ...tail] = rest as [string, ...string[]];
      const parent = info.schema.getType(parentName);
      const next = isObjectType(parent) ? getNamedType(parent.getFields()[head]?.type)?.name : undefined;
      fieldsNamed(info, set, parentName, [head], (_name, node) => {
        // Under an abstract parent the field's type is read from the member that has it.
        const child = next ?? memberFieldType(parentName, head);
        if (child) walk([node], child, tail);
      });
    }
  };
  const memberFieldType = (abstractName: string, field: string): string | undefined => {
    const t = info.schema.getType(abstractName);
    if (!t || !isAbstractType(t)) return undefined;
    for (const m of info.schema.getPossibleTypes(t)) {
      const f = m.getFields()[field];
      if (f) return getNamedType(f.type).name;
    }
    return undefined;
  };
  const rootType = getNamedType(info.returnType).name;
  for (const p of paths) walk(info.fieldNodes.map((n) => n.selectionSet), rootType, p);
  return sets;
}
