import { readFileSync } from 'node:fs';
import { buildSchema, isEnumType, isInputObjectType, isInterfaceType, isObjectType, printSchema, type GraphQLSchema } from 'graphql';
import { describe, expect, it } from 'vitest';
import { schema } from '../../src/graphql/schema.js';

describe('schema.graphql', () => {
  it('matches the schema the code builds (run `npm run print-schema` after changing types)', () => {
    const checkedIn = readFileSync(new URL('../../schema.graphql', import.meta.url), 'utf8');
    expect(checkedIn).toBe(`${printSchema(schema)}\n`);
  });
});

/** Every type, field, argument, input field, enum value and directive of `s` that has no description. */
function undescribed(s: GraphQLSchema): string[] {
  const missing: string[] = [];
  const blank = (d: string | null | undefined) => !d || d.trim() === '';
  for (const type of Object.values(s.getTypeMap())) {
    if (type.name.startsWith('__')) continue;
    if (blank(type.description)) missing.push(`type ${type.name}`);
    if (isObjectType(type) || isInterfaceType(type) || isInputObjectType(type)) {
      for (const field of Object.values(type.getFields())) {
        if (blank(field.description)) missing.push(`field ${type.name}.${field.name}`);
        if ('args' in field) for (const arg of field.args) if (blank(arg.description)) missing.push(`argument ${type.name}.${field.name}(${arg.name})`);
      }
    }
    if (isEnumType(type)) for (const value of type.getValues()) if (blank(value.description)) missing.push(`enum value ${type.name}.${value.name}`);
  }
  for (const directive of s.getDirectives()) {
    if (blank(directive.description)) missing.push(`directive @${directive.name}`);
    for (const arg of directive.args) if (blank(arg.description)) missing.push(`argument @${directive.name}(${arg.name})`);
  }
  return missing;
}

describe('descriptions', () => {
  // schema.graphql is the API reference: what it does not describe, nobody can look up. A field
  // added without a `description` fails here, by name.
  it('every type, field, argument, input field, enum value and directive has one', () => {
    expect(undescribed(schema)).toEqual([]);
  });

  it('the check finds what lacks one (a schema with a bare field, argument and enum value)', () => {
    const bare = buildSchema(`
      "A query." type Query { "Described." ok(
        "Described." a: Int, b: Int): Int, bare: Colour }
      "A colour." enum Colour { "Red." RED, BLUE }`);
    expect(undescribed(bare)).toEqual(['argument Query.ok(b)', 'field Query.bare', 'enum value Colour.BLUE']);
  });
});
