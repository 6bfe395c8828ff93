import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useId, useState } from 'react';
import { request } from '../api.ts';
import { graphql } from '../graphql.ts';
import { useSession } from '../session.tsx';
import { ConflictTag, explainConflict, list } from './conflict.tsx';
import { ConfirmStep } from './confirm-step.tsx';
import { Ago, formatTime, useNow } from './time.tsx';
import { Value } from './values.tsx';
import './review.css';

/** One competing value of a property (ConflictDetail): what it was, which version wrote it, from which device, when. */
export interface ValueAt {
  value: unknown;
  version: number;
  deviceId: string | null;
  at: string;
  source: 'ONLINE' | 'IN_ORDER' | 'RELEASED' | 'FORCED' | 'REVIEW';
  conflicting: boolean;
}

/** What the panel needs of a record (the entity view's query supplies it). */
export interface ConflictedEntity {
  id: string;
  label: string;
  version: number;
  deleted: boolean;
  conflict: 'SOFT' | 'HARD' | null;
  conflictingProperties: readonly string[];
  lastConflictAt: string | null;
  dataset: { name: string };
  conflictDetails: readonly { property: string; before: ValueAt | null; now: ValueAt; writes: readonly ValueAt[] }[];
}

const Resolve = graphql(`
  mutation ResolveWithValues($id: ID!, $version: Int!, $values: JSONObject, $label: String, $note: String) {
    resolveConflict(entityId: $id, version: $version, values: $values, label: $label, note: $note) {
      __typename
      ... on MutationResolveConflictSuccess { data { id version conflict } }
      ... on Error { code message }
    }
  }
`);

const Restore = graphql(`
  mutation RestoreEntity($id: ID!, $version: Int!, $note: String) {
    restoreEntity(entityId: $id, version: $version, note: $note) {
      __typename
      ... on MutationRestoreEntitySuccess { data { id version deleted } }
      ... on Error { code message }
    }
  }
`);

/** One option of a property's choice. `key` is the radio's value. */
interface Candidate {
  key: string;
  title: string;
  at: ValueAt;
}

/** Now, then every other write of the property (newest first: authors' values and the other side's), then the value before the conflict. */
function candidates(d: ConflictedEntity['conflictDetails'][number]): Candidate[] {
  const out: Candidate[] = [{ key: 'now', title: 'Now', at: d.now }];
  for (const w of [...d.writes].reverse()) {
    if (w.version === d.now.version) continue;
    out.push({ key: `v${w.version}`, title: w.conflicting ? "Author's value" : 'Other write', at: w });
  }
  if (d.before) out.push({ key: 'before', title: 'Before the conflict', at: d.before });
  return out;
}

/** A typed value: JSON when it reads as JSON (16, true, "text", [1, 2]), plain text otherwise. */
export function parseTyped(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

const who = (a: ValueAt) => (a.deviceId ? `device ${a.deviceId}` : a.source === 'REVIEW' ? 'a reviewer' : 'no device named');

type Verdict = { kind: 'resolve'; values: Record<string, unknown>; label: string | null } | { kind: 'mark' } | { kind: 'restore' };

/**
 * A record's open conflict and the reviewer's verdict on it (issue 19, item 7): per conflicting
 * property the candidates side by side, a pick or a typed value, a note, a confirmation. The verdict
 * is made at the version the reviewer looked at: once they start deciding, the panel holds on to
 * the record as it was (live updates still redraw the rest of the page) and says so when the record
 * moves on, and the server answers STALE_VERSION rather than overwrite what they did not see.
 */
export function ResolvePanel({ entity: live, refetch }: { entity: ConflictedEntity; refetch(): void }) {
  const { token, mayReview } = useSession();
  const queryClient = useQueryClient();
  const now = useNow(5000);
  const noteId = useId();
  // The record as the reviewer saw it when they began to decide; null while they have not.
  const [pinned, setPinned] = useState<ConflictedEntity | null>(null);
  const [choices, setChoices] = useState<Record<string, string>>({});
  const [typed, setTyped] = useState<Record<string, string>>({});
  const [note, setNote] = useState('');
  const [confirming, setConfirming] = useState<Verdict | null>(null);
  // What the last verdict did, said while the record is still at the version it left.
  const [doneAt, setDoneAt] = useState<{ text: string; version: number } | null>(null);
  const [stale, setStale] = useState<string | null>(null);
  const e = pinned ?? live;
  const done = doneAt && doneAt.version === live.version ? doneAt.text : null;
  const pin = () => setPinned((p) => p ?? live);

  const reset = () => {
    setPinned(null);
    setChoices({});
    setTyped({});
    setNote('');
    setConfirming(null);
    setStale(null);
  };
  const reload = () => {
    reset();
    setDoneAt(null);
    refetch();
  };

  const verdict = useMutation({
    mutationFn: async (v: Verdict): Promise<{ ok: string; version: number } | { code: string; message: string }> => {
      const trimmed = note.trim() === '' ? null : note;
      if (v.kind === 'restore') {
        const r = (await request(token, Restore, { id: e.id, version: e.version, note: trimmed })).restoreEntity;
        return r.__typename === 'MutationRestoreEntitySuccess' ? { ok: `Restored: version ${r.data.version} brings the record back.`, version: r.data.version } : { code: r.code, message: r.message };
      }
      const vars = v.kind === 'resolve' ? { values: Object.keys(v.values).length > 0 ? v.values : null, label: v.label } : { values: null, label: null };
      const r = (await request(token, Resolve, { id: e.id, version: e.version, note: trimmed, ...vars })).resolveConflict;
      if (r.__typename !== 'MutationResolveConflictSuccess') return { code: r.code, message: r.message };
      const wrote = r.data.version > e.version;
      return {
        ok: wrote ? `Resolved: version ${r.data.version} written with your choices, and the conflict is cleared.` : 'Resolved: the conflict is marked resolved; no value changed.',
        version: r.data.version,
      };
    },
    onSuccess: (r) => {
      if ('ok' in r) {
        reset();
        setDoneAt({ text: r.ok, version: r.version });
      } else if (r.code === 'STALE_VERSION') {
        setConfirming(null);
        setStale(r.message);
      } else {
        return;
      }
      void queryClient.invalidateQueries({ queryKey: ['entity', e.id] });
      void queryClient.invalidateQueries({ queryKey: ['dataset', e.dataset.name] });
      void queryClient.invalidateQueries({ queryKey: ['overview'] });
    },
  });
  const refusal = verdict.data && 'code' in verdict.data && verdict.data.code !== 'STALE_VERSION' ? `Not done: ${verdict.data.message}` : verdict.isError ? verdict.error.message : null;

  const moved = pinned && live.version !== pinned.version;
  const staleNotice = (stale || moved) && (
    <div className="notice stale" role="alert">
      <p>
        {stale
          ? `Not resolved: ${stale}.`
          : `This record changed while you were deciding: it is now at version ${live.version}, and your choices are for version ${pinned!.version}, so resolving them would be refused.`}{' '}
        Nothing was overwritten. Reload it to see what is there now and decide again.
      </p>
      <button type="button" onClick={reload}>
        Reload the record
      </button>
    </div>
  );

  if (!e.conflict && !e.deleted) {
    return (
      <>
        {staleNotice}
        <p className="ok-note" role="status">
          {done ?? 'No open conflict.'}
        </p>
      </>
    );
  }

  /** The chosen values and label, only where the reviewer picked something other than "now". */
  const chosen = () => {
    const values: Record<string, unknown> = {};
    let label: string | null = null;
    for (const d of e.conflictDetails) {
      const key = choices[d.property] ?? 'now';
      if (key === 'now') continue;
      const value = key === 'typed' ? (d.property === 'label' ? (typed[d.property] ?? '') : parseTyped(typed[d.property] ?? '')) : candidates(d).find((c) => c.key === key)?.at.value;
      if (d.property === 'label') label = String(value);
      else values[d.property] = value;
    }
    return { kind: 'resolve' as const, values, label };
  };

  const nowOf = (property: string) => e.conflictDetails.find((d) => d.property === property)?.now.value;
  const changes = confirming?.kind === 'resolve' ? [...Object.entries(confirming.values), ...(confirming.label !== null ? ([['label', confirming.label]] as const) : [])] : [];

  return (
    <section className={`conflict-panel ${e.conflict === 'HARD' ? 'hard' : 'soft'}`} aria-labelledby="conflict-heading">
      <h2 id="conflict-heading">
        {e.conflict ? (
          <>
            <ConflictTag type={e.conflict} />
            {e.conflictingProperties.length > 0 && <> on {list(e.conflictingProperties)}</>}
            {e.lastConflictAt && (
              <span className="when">
                {' '}
                · <Ago at={e.lastConflictAt} now={now} />
              </span>
            )}
          </>
        ) : (
          'Deleted'
        )}
      </h2>
      {staleNotice}
      {e.conflict && <p>{explainConflict(e.conflict, e.conflictingProperties)}</p>}
      {e.deleted && <p>This record is deleted. Its history stays; a reviewer can bring it back with its last values.</p>}
      {mayReview && (
        <>
          {e.conflict && !e.deleted && e.conflictDetails.length > 0 && (
            <div className="choices">
              <p className="hint">For each property, keep the value now or pick another: an author's, the other side's, the one before the conflict, or your own.</p>
              {e.conflictDetails.map((d) => (
                <fieldset key={d.property} className="choice">
                  <legend>{d.property === 'label' ? 'label (name)' : d.property}</legend>
                  <div className="candidates">
                    {candidates(d).map((c) => (
                      <label key={c.key} className="candidate">
                        <input
                          type="radio"
                          name={`choice-${d.property}`}
                          value={c.key}
                          checked={(choices[d.property] ?? 'now') === c.key}
                          onChange={() => {
                            pin();
                            setChoices((s) => ({ ...s, [d.property]: c.key }));
                          }}
                        />
                        <span className="title">{c.title}</span> <Value value={c.at.value} />
                        <span className="meta">
                          version {c.at.version} · {who(c.at)} · {formatTime(c.at.at)}
                        </span>
                      </label>
                    ))}
                    <label className="candidate">
                      <input
                        type="radio"
                        name={`choice-${d.property}`}
                        value="typed"
                        checked={choices[d.property] === 'typed'}
                        onChange={() => {
                          pin();
                          setChoices((s) => ({ ...s, [d.property]: 'typed' }));
                        }}
                      />
                      <span className="title">Your value</span>
                      <input
                        type="text"
                        aria-label={`Your value for ${d.property}`}
                        value={typed[d.property] ?? ''}
                        onChange={(ev) => {
                          pin();
                          const text = ev.target.value;
                          setTyped((s) => ({ ...s, [d.property]: text }));
                          setChoices((s) => ({ ...s, [d.property]: 'typed' }));
                        }}
                      />
                      <span className="meta">{d.property === 'label' ? 'text' : 'read as JSON when it is (16, true, "16"), as text otherwise'}</span>
                    </label>
                  </div>
                </fieldset>
              ))}
            </div>
          )}
          <label className="note" htmlFor={noteId}>
            Note (optional, kept in the history)
          </label>
          <textarea
            id={noteId}
            className="note"
            maxLength={2000}
            rows={2}
            value={note}
            onChange={(ev) => {
              pin();
              setNote(ev.target.value);
            }}
          />
          <div className="actions">
            {e.conflict && !e.deleted && e.conflictDetails.length > 0 && (
              <button
                type="button"
                onClick={() => {
                  pin();
                  setConfirming(chosen());
                }}
              >
                Resolve with these values
              </button>
            )}{' '}
            {e.conflict && (
              <button
                type="button"
                className={e.conflictDetails.length > 0 ? 'secondary' : undefined}
                onClick={() => {
                  pin();
                  setConfirming({ kind: 'mark' });
                }}
              >
                Mark resolved
              </button>
            )}{' '}
            {e.deleted && (
              <button
                type="button"
                onClick={() => {
                  pin();
                  setConfirming({ kind: 'restore' });
                }}
              >
                Restore
              </button>
            )}
          </div>
        </>
      )}
      {done && <p role="status">{done}</p>}
      <ConfirmStep
        open={confirming !== null}
        title={
          confirming?.kind === 'restore'
            ? `Restore ${e.label}?`
            : changes.length > 0
              ? `Write version ${e.version + 1} and resolve?`
              : `Mark the conflict on ${e.label} resolved?`
        }
        confirmLabel={confirming?.kind === 'restore' ? 'Restore' : changes.length > 0 ? `Write version ${e.version + 1} and resolve` : 'Mark resolved'}
        onConfirm={() => confirming && verdict.mutate(confirming)}
        onCancel={() => {
          setConfirming(null);
          verdict.reset();
        }}
        pending={verdict.isPending}
        error={refusal}
      >
        {confirming?.kind === 'restore' ? (
          <p>A new version brings back the label and values it had when it was deleted. Devices pull it like any change.</p>
        ) : changes.length > 0 ? (
          <>
            <p>A new version from you, on top of version {e.version}, sets:</p>
            <ul>
              {changes.map(([property, value]) => (
                <li key={property}>
                  {property}: <Value value={nowOf(property)} /> → <Value value={value} />
                  {typeof value !== 'string' && value !== null && <span className="muted"> ({Array.isArray(value) ? 'a list' : typeof value})</span>}
                </li>
              ))}
            </ul>
            <p>Then the conflict is marked resolved.</p>
          </>
        ) : (
          <p>No value changes: the record stays as it is at version {e.version}, and its open conflict is marked resolved.</p>
        )}
        <p>{note.trim() ? <>Your note: “{note.trim()}”</> : 'No note.'}</p>
      </ConfirmStep>
    </section>
  );
}
