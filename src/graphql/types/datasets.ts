import { validateName } from '../../core/validate.js';
import { addDatasetProperties, createDataset, MAX_DATASETS } from '../../sync/datasets.js';
import { builder } from '../builder.js';

export const Dataset = builder.drizzleObject('datasets', {
  name: 'Dataset',
  description: 'A named list of entities with declared property names.',
  fields: (t) => ({
    name: t.exposeString('name', { description: 'Its unique name (letters, digits and _; changes name their dataset by it).' }),
    properties: t.exposeStringList('properties', { description: 'Property names changes may set.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When it was created.' }),
  }),
});

builder.queryFields((t) => ({
  datasets: t.drizzleField({
    type: ['datasets'],
    description: `The datasets the caller may use, by name (at most ${MAX_DATASETS} exist).`,
    complexity: { field: 1, multiplier: MAX_DATASETS },
    resolve: (query, _root, _args, ctx) =>
      ctx.db.query.datasets.findMany(query({ where: ctx.principal.datasets ? { name: { in: [...ctx.principal.datasets] } } : {}, orderBy: { name: 'asc' } })),
  }),
  dataset: t.drizzleField({
    type: 'datasets',
    nullable: true,
    description: 'The dataset with this name; null when there is none.',
    args: { name: t.arg.string({ required: true, description: 'Its name.' }) },
    authScopes: (_root, args) => ({ dataset: args.name }),
    // A name that could never be valid (NUL, surrogates…) names nothing: no need to ask the database.
    resolve: (query, _root, args, ctx) => (validateName(args.name) ? null : ctx.db.query.datasets.findFirst(query({ where: { name: args.name } }))),
  }),
}));

builder.mutationFields((t) => ({
  createDataset: t.field({
    type: Dataset,
    description: 'Creates a dataset with its property names. Admins only.',
    args: {
      name: t.arg.string({ required: true, description: 'A new name: 1-64 letters, digits or _, not starting with a digit.' }),
      properties: t.arg.stringList({ required: true, description: 'The property names changes may set: each 1-64 letters, digits or _, not `label`, none twice.' }),
    },
    authScopes: { admin: true },
    errors: { dataField: { description: 'The dataset made.' } },
    resolve: (_root, args, ctx) => createDataset(ctx.db, args.name, args.properties),
  }),
  addDatasetProperties: t.field({
    type: Dataset,
    description: 'Declares more property names. Existing ones are kept; properties are never removed.',
    args: {
      name: t.arg.string({ required: true, description: 'The dataset.' }),
      properties: t.arg.stringList({ required: true, description: 'The property names to add; those it has already are ignored.' }),
    },
    authScopes: { admin: true },
    errors: { dataField: { description: 'The dataset with all its properties.' } },
    resolve: (_root, args, ctx) => addDatasetProperties(ctx.db, args.name, args.properties),
  }),
}));
