import { CHANGE_ACTIONS, CHANGE_OUTCOMES, CONFLICT_TYPES, VERSION_SOURCES } from '../../core/types.js';
import { builder } from '../builder.js';

export const ChangeOutcomeEnum = builder.enumType('ChangeOutcome', {
  description: 'What became of a submitted change.',
  values: {
    APPLIED: { description: 'Applied as a new version.' },
    HELD: { description: 'Waiting in the backlog for its predecessor in its offline run.' },
    DUPLICATE: { description: 'Seen before with the same payload; nothing changed. `originalOutcome` says what it came to.' },
    REJECTED: { description: 'Refused; `error` says why. The change is still recorded.' },
  } satisfies Record<(typeof CHANGE_OUTCOMES)[number], unknown>,
});

export const ChangeActionEnum = builder.enumType('ChangeAction', {
  description: 'What a change does to its entity.',
  values: {
    CREATE: { description: 'Makes the entity (its version 1), with a label and properties.' },
    UPDATE: { description: 'Sets properties or applies operations on the entity, made on `baseVersion`.' },
    DELETE: { description: 'Marks the entity deleted (its history stays).' },
  } satisfies Record<(typeof CHANGE_ACTIONS)[number], unknown>,
});

export const ConflictTypeEnum = builder.enumType('ConflictType', {
  description: 'SOFT: applied on top of unseen versions that set none of its properties. HARD: some were set by both.',
  values: {
    SOFT: { description: 'Applied on top of versions its author had not seen, none of which set the properties it sets: nothing was overwritten.' },
    HARD: { description: 'Applied on top of unseen versions that set some of the same properties to other values: one side\'s value was overwritten (`conflictingProperties`).' },
  } satisfies Record<(typeof CONFLICT_TYPES)[number], unknown>,
});

export const VersionSourceEnum = builder.enumType('VersionSource', {
  description: 'How a version came to be applied.',
  values: {
    ONLINE: { description: 'A change without an offline run.' },
    IN_ORDER: { description: 'A change of an offline run whose predecessor was already applied.' },
    RELEASED: { description: 'A held change applied when its predecessor arrived.' },
    FORCED: { description: 'A held change applied after the hold timeout, its predecessor still missing.' },
    REVIEW: { description: 'Written by a reviewer (resolveConflict with values, or restoreEntity), from no device: `resolution` says who and why.' },
  } satisfies Record<(typeof VERSION_SOURCES)[number], unknown>,
});
