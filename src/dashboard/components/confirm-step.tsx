import { useEffect, useId, useRef, type ReactNode } from 'react';

/**
 * A modal confirmation (the native <dialog>: focus moves into it, Escape cancels, the rest of the
 * page is inert), so a verdict is never made by one stray click. `open` drives it from state.
 */
export function ConfirmStep({
  open,
  title,
  children,
  confirmLabel,
  onConfirm,
  onCancel,
  pending = false,
  error,
}: {
  open: boolean;
  title: string;
  children: ReactNode;
  confirmLabel: string;
  onConfirm(): void;
  onCancel(): void;
  pending?: boolean;
  error?: string | null;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const d = dialog.current;
    if (!d) return;
    if (open && !d.open) d.showModal();
    if (!open && d.open) d.close();
  }, [open]);
  return (
    <dialog ref={dialog} aria-labelledby={titleId} onClose={onCancel}>
      {open && (
        <>
          <h2 id={titleId}>{title}</h2>
          {children}
          {error && (
            <p role="alert" className="error">
              {error}
            </p>
          )}
          <div className="actions">
            <button type="button" onClick={onConfirm} disabled={pending}>
              {pending ? 'Working…' : confirmLabel}
            </button>{' '}
            <button type="button" className="secondary" onClick={onCancel}>
              Cancel
            </button>
          </div>
        </>
      )}
    </dialog>
  );
}
