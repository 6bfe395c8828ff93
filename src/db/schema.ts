import { defineRelations } from 'drizzle-orm';
import { changes, heldChanges, localIds } from './changes.js';
import { datasets } from './datasets.js';
import { entities, entityVersions } from './entities.js';
import { eventPayloads } from './events.js';
import { devicePulls, resolutions } from './resolutions.js';
import { subsetLog } from './subsets.js';
import { apiTokens } from './tokens.js';
import { webhookDeliveries, webhookEvents, webhooks } from './webhooks.js';

export const tables = { datasets, entities, entityVersions, changes, heldChanges, localIds, eventPayloads, apiTokens, resolutions, devicePulls, webhooks, webhookEvents, webhookDeliveries, subsetLog };

export const relations = defineRelations(tables, (r) => ({
  datasets: {
    entities: r.many.entities({ from: r.datasets.id, to: r.entities.datasetId }),
  },
  entities: {
    dataset: r.one.datasets({ from: r.entities.datasetId, to: r.datasets.id, optional: false }),
    versions: r.many.entityVersions({ from: r.entities.id, to: r.entityVersions.entityId }),
    resolutions: r.many.resolutions({ from: r.entities.id, to: r.resolutions.entityId }),
  },
  entityVersions: {
    entity: r.one.entities({ from: r.entityVersions.entityId, to: r.entities.id, optional: false }),
    resolution: r.one.resolutions({ from: r.entityVersions.resolutionId, to: r.resolutions.id, optional: true }),
  },
  resolutions: {
    entity: r.one.entities({ from: r.resolutions.entityId, to: r.entities.id, optional: false }),
    dataset: r.one.datasets({ from: r.resolutions.datasetId, to: r.datasets.id, optional: false }),
    writtenVersion: r.one.entityVersions({ from: [r.resolutions.entityId, r.resolutions.versionWritten], to: [r.entityVersions.entityId, r.entityVersions.version], optional: true }),
  },
  // Optional: a held update may wait for the create that makes its entity.
  heldChanges: {
    entity: r.one.entities({ from: r.heldChanges.entityId, to: r.entities.id, optional: true }),
  },
  webhookDeliveries: {
    event: r.one.webhookEvents({ from: r.webhookDeliveries.eventSeq, to: r.webhookEvents.seq, optional: false }),
  },
}));
