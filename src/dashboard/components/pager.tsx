import './lists.css';
import { useCallback, useState } from 'react';

/**
 * Cursor paging one page at a time (Relay `first`/`after`): the cursors of the pages seen are kept
 * so "Previous page" needs no `before`. Only one page is ever in the DOM, however long the list.
 */
export function useCursorPages() {
  const [stack, setStack] = useState<(string | null)[]>([null]);
  const next = useCallback((cursor: string | null | undefined) => {
    if (cursor) setStack((s) => [...s, cursor]);
  }, []);
  const previous = useCallback(() => setStack((s) => (s.length > 1 ? s.slice(0, -1) : s)), []);
  const reset = useCallback(() => setStack([null]), []);
  return { after: stack[stack.length - 1] ?? null, page: stack.length, next, previous, reset };
}

/** "Previous page", "Page 2", "Next page": buttons with names, in a navigation landmark named after the list. */
export function Pager({
  what,
  page,
  hasNext,
  busy,
  onNext,
  onPrevious,
}: {
  what: string;
  page: number;
  hasNext: boolean;
  busy?: boolean;
  onNext(): void;
  onPrevious(): void;
}) {
  if (page === 1 && !hasNext) return null;
  return (
    <nav className="pager" aria-label={`Pages of ${what}`}>
      <button type="button" className="secondary" onClick={onPrevious} disabled={page === 1 || busy}>
        Previous page
      </button>
      <span aria-live="polite">Page {page}</span>
      <button type="button" className="secondary" onClick={onNext} disabled={!hasNext || busy}>
        Next page
      </button>
    </nav>
  );
}
