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
import './types/webhooks.js';

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});

export const schema = builder.toSchema({ sortSchema: true });
