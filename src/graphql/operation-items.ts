import { getArgumentValues, getDirectiveValues, GraphQLIncludeDirective, GraphQLSkipDirective, Kind, type GraphQLResolveInfo, type SelectionNode, type SelectionSetNode } from 'graphql';

/**
 * How many items the root fields of this operation carry in all, aliases and fragments included
 * (skipped fields not): one operation is one request, and aliases must not multiply a per-request
 * bound. Read from the document, so it is known before any field has run. `counts` names the
 * fields that carry items and how many each occurrence carries, from its argument values.
 */
export function itemsInOperation(info: GraphQLResolveInfo, counts: Record<string, (args: Record<string, unknown>) => number>): number {
  const fields = info.parentType.getFields();
  const included = (node: SelectionNode) =>
    getDirectiveValues(GraphQLSkipDirective, node, info.variableValues)?.if !== true && getDirectiveValues(GraphQLIncludeDirective, node, info.variableValues)?.if !== false;
  let total = 0;
  const visit = (set: SelectionSetNode) => {
    for (const node of set.selections) {
      if (!included(node)) continue;
      if (node.kind === Kind.INLINE_FRAGMENT) visit(node.selectionSet);
      else if (node.kind === Kind.FRAGMENT_SPREAD) {
        const fragment = info.fragments[node.name.value];
        if (fragment) visit(fragment.selectionSet);
      } else {
        const count = counts[node.name.value];
        const field = fields[node.name.value];
        if (count && field) total += count(getArgumentValues(field, node, info.variableValues));
      }
    }
  };
  visit(info.operation.selectionSet);
  return total;
}
