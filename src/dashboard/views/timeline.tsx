import { keepPreviousData, useQuery } from '@tanstack/react-query';
import type { ResultOf } from 'gql.tada';
import { useState } from 'react';
import { request } from '../api.ts';
import { ConflictTag, list } from '../components/conflict.tsx';
import { QueryState } from '../components/page.tsx';
import { formatTime } from '../components/time.tsx';
import { DiffTable } from '../components/values.tsx';
import { graphql } from '../graphql.ts';
import { useSession } from '../session.tsx';

const Versions = graphql(`
  query EntityVersions($id: ID!, $after: Int!, $limit: Int!) {
    entity(id: $id) {
      id
      versions(after: $after, limit: $limit) {
        version appliedOn action conflict conflictingProperties resolved source branchId trunkVersion baseVersion
        serverDiff { property old new }
        baseDiff { property old new }
        authorViewUnavailable deviceId createdAt
        resolution { kind by note atVersion versionWritten createdAt }
      }
    }
  }
`);

type Version = NonNullable<ResultOf<typeof Versions>['entity']>['versions'][number];

const PAGE = 50;
/** The API's largest page of versions (Entity.versions limit). */
const MOST = 1000;

/** How a version came to be, in words (EntityVersion.source). */
const HOW: Record<Version['source'], string> = {
  ONLINE: 'sent online',
  IN_ORDER: 'in an offline run, in order',
  RELEASED: 'released: it was held until the step before it in its run arrived',
  FORCED: 'forced: held too long, applied without the step before it',
  REVIEW: 'written by a reviewer',
};

const ACTION: Record<Version['action'], string> = { CREATE: 'Created', UPDATE: 'Changed', DELETE: 'Deleted' };

/** The history, newest first, the newest 50 versions and more on request; each with the author's and the server's view side by side. */
export function Timeline({ id, version }: { id: string; version: number }) {
  const { token } = useSession();
  const [shown, setShown] = useState(PAGE);
  const after = Math.max(0, version - Math.min(shown, MOST));
  const versions = useQuery({
    queryKey: ['entity', id, 'versions', after, version],
    queryFn: () => request(token, Versions, { id, after, limit: version - after }),
    placeholderData: keepPreviousData,
  });
  const rows = [...(versions.data?.entity?.versions ?? [])].reverse();
  return (
    <section aria-labelledby="history-heading">
      <h2 id="history-heading">History</h2>
      <p className="muted">Newest first. For each version: what its author changed from what they saw, and what changed on the server.</p>
      {!versions.data && <QueryState pending={versions.isPending} error={versions.error} what="the history" />}
      <ol className="timeline" reversed>
        {rows.map((v) => (
          <li key={v.version}>
            <VersionCard v={v} />
          </li>
        ))}
      </ol>
      {after > 0 && shown < MOST && (
        <button type="button" onClick={() => setShown((n) => n + PAGE)}>
          Show earlier versions
        </button>
      )}
    </section>
  );
}

function VersionCard({ v }: { v: Version }) {
  const headingId = `version-${v.version}`;
  const run = v.branchId ? ` (run ${v.branchId.slice(0, 8)})` : '';
  const seen = v.branchId
    ? v.trunkVersion === null
      ? 'its run began with an offline create'
      : `it saw version ${v.trunkVersion} and its own earlier steps`
    : v.baseVersion !== null
      ? `it saw version ${v.baseVersion}`
      : null;
  return (
    <article aria-labelledby={headingId} className={v.conflict && !v.resolved ? 'version open-conflict' : 'version'}>
      <header>
        <h3 id={headingId}>
          Version {v.version}: {ACTION[v.action]}
        </h3>
        <p className="meta">
          <time dateTime={v.createdAt}>{formatTime(v.createdAt)}</time> · {v.deviceId ? <>from device <strong>{v.deviceId}</strong></> : 'no device named'} · {HOW[v.source]}
          {run}
        </p>
        {v.conflict && (
          <p className="meta">
            <ConflictTag type={v.conflict} />
            {v.conflictingProperties.length > 0 && <> on {list(v.conflictingProperties)}</>} · {v.resolved ? 'resolved' : 'open'}
          </p>
        )}
        <Activity v={v} />
      </header>
      <div className="views">
        <section aria-label={`Author's view of version ${v.version}`}>
          <h4>Author's view</h4>
          <p className="hint">What the author changed{seen ? `, compared with what they saw (${seen})` : ''}.</p>
          {v.baseDiff ? (
            <DiffTable diffs={v.baseDiff} caption={`Author's changes in version ${v.version}`} highlight={v.conflictingProperties} />
          ) : (
            <p className="unavailable">Not available: {v.authorViewUnavailable ?? 'the server does not know what the author saw'}. The server's view is exact.</p>
          )}
        </section>
        <section aria-label={`Server's view of version ${v.version}`}>
          <h4>Server's view</h4>
          <p className="hint">
            {v.version === 1
              ? 'The record as created.'
              : `What changed compared with version ${v.version - 1}, the one before it.${v.appliedOn !== null && v.appliedOn !== v.version - 1 ? ` The change was applied against version ${v.appliedOn}.` : ''}`}
          </p>
          <DiffTable diffs={v.serverDiff} caption={`Server's changes in version ${v.version}`} highlight={v.conflictingProperties} />
        </section>
      </div>
    </article>
  );
}

/**
 * Who settled this version, in a line (issue 19, item 13): the reviewer's verdict that resolved its
 * conflict, wrote it, or restored the record, with the token's name and the note. Only reviewers
 * and admins are told (EntityVersion.resolution is null for others).
 */
function Activity({ v }: { v: Version }) {
  const r = v.resolution;
  if (!r) return null;
  const wrote = r.versionWritten === v.version;
  const what =
    r.kind === 'RESTORE'
      ? 'Restored by'
      : wrote
        ? 'Written by'
        : 'Conflict resolved by';
  const how =
    r.kind === 'RESTORE'
      ? ''
      : wrote
        ? `, resolving the conflict seen at version ${r.atVersion}`
        : r.versionWritten !== null
          ? `, at version ${r.atVersion}, choosing the values written as version ${r.versionWritten}`
          : `, at version ${r.atVersion}, values kept as they were`;
  return (
    <p className="activity">
      {what} <strong>{r.by}</strong> on <time dateTime={r.createdAt}>{formatTime(r.createdAt)}</time>
      {how}
      {r.note ? <>: “{r.note}”</> : '.'}
    </p>
  );
}
