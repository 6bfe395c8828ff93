import { defineRelations } from 'drizzle-orm';
import { changes, heldChanges, localIds } from './changes.js';
import { datasets } from './datasets.js';
import { entities, entityVersions } from './entities.js';
import { eventPayloads } from './events.js';
import { subsetLog } from './subsets.js';
import { apiTokens } from './tokens.js';

export const tables = { datasets, entities, entityVersions, changes, heldChanges, localIds, eventPayloads, apiTokens, subsetLog };

export const relations = defineRelations(tables, (r) => ({
  datasets: {
    entities: r.many.entities({ from: r.datasets.id, to: r.entities.datasetId }),
  },
  entities: {
    dataset: r.one.datasets({ from: r.entities.datasetId, to: r.datasets.id, optional: false }),
    versions: r.many.entityVersions({ from: r.entities.id, to: r.entityVersions.entityId }),
  },
  entityVersions: {
    entity: r.one.entities({ from: r.entityVersions.entityId, to: r.entities.id, optional: false }),
  },
  // Optional: a held update may wait for the create that makes its entity.
  heldChanges: {
    entity: r.one.entities({ from: r.heldChanges.entityId, to: r.entities.id, optional: true }),
  },
}));
