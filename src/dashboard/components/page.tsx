import { useEffect, useRef, type ReactNode } from 'react';

/**
 * One view's frame: its heading takes the focus when the view opens, so keyboard and
 * screen-reader users land on what changed (a hash route change is otherwise silent).
 */
export function Page({ title, crumbs, children }: { title: ReactNode; crumbs?: ReactNode; children: ReactNode }) {
  const heading = useRef<HTMLHeadingElement>(null);
  const text = typeof title === 'string' ? title : null;
  useEffect(() => {
    heading.current?.focus();
    if (text) document.title = `${text} · entity-sync`;
  }, [text]);
  return (
    <>
      {crumbs && (
        <nav aria-label="Breadcrumb" className="crumbs">
          {crumbs}
        </nav>
      )}
      <h1 ref={heading} tabIndex={-1}>
        {title}
      </h1>
      {children}
    </>
  );
}

/** Loading and failure of a view's query, said in words. */
export function QueryState({ pending, error, what }: { pending: boolean; error: Error | null; what: string }) {
  if (error) return <p role="alert" className="error">Could not load {what}: {error.message}</p>;
  if (pending) return <p role="status" className="loading">Loading {what}…</p>;
  return null;
}
