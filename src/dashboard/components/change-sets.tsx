import './lists.css';
import { PropertyRow, Value } from './values.tsx';

interface Op {
  op?: unknown;
  property?: unknown;
  value?: unknown;
  by?: unknown;
  index?: unknown;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function opText(o: Op): string {
  const p = typeof o.property === 'string' ? o.property : '?';
  switch (String(o.op).toUpperCase()) {
    case 'INCREMENT':
      return `add ${String(o.by ?? 0)} to ${p}`;
    case 'LIST_ADD':
      return `add ${JSON.stringify(o.value)} to the list ${p}${typeof o.index === 'number' ? ` at ${o.index}` : ''}`;
    case 'LIST_REMOVE':
      return `remove ${JSON.stringify(o.value)} from the list ${p}`;
    case 'SET_LABEL':
      return `name it ${JSON.stringify(o.value)}`;
    default:
      return `set ${p} to ${JSON.stringify(o.value)}`;
  }
}

/**
 * What a change sets, from its payload (as sent, or as validated for the backlog): a delete said in
 * words, the label and each property with its value, and operations in words. `inRun`: the change is
 * shown beside its record and its step in its run, so neither its entity id nor its base version
 * (a number of the author's device, which reads as a server version) is repeated.
 */
export function ChangeSets({ payload, entityId, inRun = false }: { payload: unknown; entityId?: string | null; inRun?: boolean }) {
  if (!isObject(payload)) return <span className="muted">(nothing readable was sent)</span>;
  const action = String(payload.action ?? '').toUpperCase();
  const data = isObject(payload.data) ? Object.entries(payload.data) : [];
  const ops = Array.isArray(payload.operations) ? (payload.operations as Op[]) : [];
  const verb = action === 'CREATE' ? 'Create' : action === 'DELETE' ? 'Delete' : action === 'UPDATE' ? 'Update' : action ? action.toLowerCase() : 'Change';
  const target = inRun ? null : entityId ? <code title={entityId}>{entityId.slice(0, 8)}</code> : typeof payload.entityId === 'string' ? <code title={payload.entityId}>{payload.entityId.slice(0, 8)}</code> : null;
  return (
    <div className="sets">
      <span className="verb">
        {verb}
        {target && <> {target}</>}
        {!inRun && typeof payload.baseVersion === 'number' && <span className="muted"> on version {payload.baseVersion}</span>}
      </span>
      {(typeof payload.label === 'string' || data.length > 0) && (
        <dl>
          {typeof payload.label === 'string' && (
            <div>
              <dt>label (name)</dt>
              <dd>
                <Value value={payload.label} />
              </dd>
            </div>
          )}
          {data.map(([k, v]) => (
            <PropertyRow key={k} name={k} value={v} />
          ))}
        </dl>
      )}
      {ops.length > 0 && (
        <ul className="ops">
          {ops.map((o, i) => (
            <li key={i}>{opText(o)}</li>
          ))}
        </ul>
      )}
      {action !== 'DELETE' && typeof payload.label !== 'string' && data.length === 0 && ops.length === 0 && <span className="muted"> (sets nothing)</span>}
    </div>
  );
}
