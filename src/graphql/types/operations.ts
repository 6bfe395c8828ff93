import type { Operation, OperationKind } from '../../core/types.js';
import { builder } from '../builder.js';

export const OperationKindEnum = builder.enumType('OperationKind', {
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
    op: t.field({ type: OperationKindEnum, required: true }),
    property: t.string({ required: false }),
    value: t.field({ type: 'JSON', required: false }),
    index: t.int({ required: false }),
    by: t.float({ required: false }),
  }),
});

export const OperationRef = builder.objectRef<Operation>('Operation').implement({
  description: 'An operation a version applied.',
  fields: (t) => ({
    op: t.field({ type: OperationKindEnum, resolve: (o) => o.op }),
    property: t.string({ nullable: true, resolve: (o) => (o.op === 'SET_LABEL' ? null : o.property) }),
    value: t.field({ type: 'JSON', nullable: true, resolve: (o) => ('value' in o ? o.value : null) }),
    index: t.int({ nullable: true, resolve: (o) => (o.op === 'LIST_ADD' ? o.index : null) }),
    by: t.float({ nullable: true, resolve: (o) => (o.op === 'INCREMENT' ? o.by : null) }),
  }),
});
