import { builder } from './builder.js';
import './types/scalars.js';
import './types/errors.js';
import './types/enums.js';
import './types/datasets.js';
import './types/entities.js';
import './types/changes.js';
import './types/branches.js';
import './types/subscriptions.js';
import './types/pull.js';
import './types/tokens.js';
import './types/dashboard.js';
import './types/review.js';
import './types/review-reads.js';
import './types/webhooks.js';

builder.queryType({ description: 'Reads: datasets, entities and their history, offline runs, the backlog, pulls, tokens.' });
builder.mutationType({ description: 'Writes: changes, datasets, conflict resolutions, backlog flushes, tokens.' });
builder.subscriptionType({ description: 'Events of a dataset, sent after they are committed (over graphql-ws or Server-Sent Events).' });

export const schema = builder.toSchema({ sortSchema: true });
