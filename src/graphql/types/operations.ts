import type { Operation, OperationKind } from '../../core/types.js';
import { builder } from '../builder.js';

export const OperationKindEnum = builder.enumType('OperationKind', {
  description: 'What an operation does.',
  values: {
    SET: { description: 'property := value' },
    UNSET: { description: 'remove the property' },
    LIST_ADD: { description: 'insert value into the list property at index (end when absent)' },
    LIST_REMOVE: { description: 'remove every element equal to value from the list property' },
    INCREMENT: { description: 'add `by` to the number property (absent counts as 0)' },
    SET_LABEL: { description: 'label := value' },
  } satisfies Record<OperationKind, unknown>,
});

export const OperationInputRef = builder.inputType('OperationInput', {
  description: 'One operation, replayed on the current server state. List and counter operations merge with concurrent ones; SET, UNSET and SET_LABEL can conflict.',
  fields: (t) => ({
    op: t.field({ type: OperationKindEnum, required: true, description: 'What to do.' }),
    property: t.string({ required: false, description: 'The property it acts on (every kind but SET_LABEL).' }),
    value: t.field({ type: 'JSON', required: false, description: 'For SET, LIST_ADD and LIST_REMOVE: the value; for SET_LABEL: the label.' }),
    index: t.int({ required: false, description: 'For LIST_ADD: where to insert (the end when absent).' }),
    by: t.float({ required: false, description: 'For INCREMENT: how much to add (negative to subtract).' }),
  }),
});

export const OperationRef = builder.objectRef<Operation>('Operation').implement({
  description: 'An operation a version applied.',
  fields: (t) => ({
    op: t.field({ type: OperationKindEnum, description: 'What it did.', resolve: (o) => o.op }),
    property: t.string({ nullable: true, description: 'The property it acted on; null for SET_LABEL.', resolve: (o) => (o.op === 'SET_LABEL' ? null : o.property) }),
    value: t.field({ type: 'JSON', nullable: true, description: 'The value it set, added or removed (the label for SET_LABEL); null for UNSET and INCREMENT.', resolve: (o) => ('value' in o ? o.value : null) }),
    index: t.int({ nullable: true, description: 'For LIST_ADD: where it inserted (null: at the end).', resolve: (o) => (o.op === 'LIST_ADD' ? o.index : null) }),
    by: t.float({ nullable: true, description: 'For INCREMENT: how much it added.', resolve: (o) => (o.op === 'INCREMENT' ? o.by : null) }),
  }),
});
