/** The GraphQL the client sends (schema.graphql describes every field). */


const RESULT_FIELDS = 'changeId outcome originalOutcome entityId localId version conflict conflictingProperties waitsFor error { code message }';

export const SUBMIT_CHANGES = `mutation SubmitChanges($changes: [ChangeInput!]!) {
  submitChanges(changes: $changes) {
    __typename
    ... on MutationSubmitChangesSuccess { data { ${RESULT_FIELDS} released { ${RESULT_FIELDS} } } }
    ... on DomainError { code message }
  }
}`;

export const CHANGES_SINCE = `query ChangesSince($dataset: String!, $cursor: String, $limit: Int, $deviceId: String) {
  changesSince(dataset: $dataset, cursor: $cursor, limit: $limit, deviceId: $deviceId) {
    __typename
    ... on QueryChangesSinceSuccess { data {
      cursor hasMore localIds { localId entityId } left
      versions { ...PulledVersion }
      entered { ...PulledVersion }
    } }
    ... on DomainError { code message }
  }
  viewer { subset { property values } }
}
fragment PulledVersion on EntityVersion { entityId version label data deleted changeId conflict conflictingProperties }`;
