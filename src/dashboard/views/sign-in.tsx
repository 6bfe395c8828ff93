import { useId, useRef, useState, type FormEvent } from 'react';

/** The first screen: one field, "API token", and "Sign in". A refused token gets the service's reason. */
export function SignIn({ onSignIn, notice }: { onSignIn: (token: string) => Promise<void>; notice: string | null }) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  const hintId = useId();
  const errorId = useId();

  async function submit(event: FormEvent) {
    event.preventDefault();
    const token = input.current?.value.trim() ?? '';
    if (token === '') {
      setError('Enter an API token first.');
      input.current?.focus();
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await onSignIn(token);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
      input.current?.focus();
      input.current?.select();
    } finally {
      setBusy(false);
    }
  }

  return (
    <main className="sign-in narrow">
      <h1>entity-sync dashboard</h1>
      <p>Review conflicts, offline runs and held changes. Sign in with an API token of a reviewer or an administrator.</p>
      {notice && (
        <p className="notice" role="status">
          {notice}
        </p>
      )}
      <form onSubmit={(e) => void submit(e)} noValidate>
        <label htmlFor="token">API token</label>
        <input
          id="token"
          ref={input}
          type="password"
          autoComplete="off"
          spellCheck={false}
          autoFocus
          aria-describedby={error ? `${errorId} ${hintId}` : hintId}
          aria-invalid={error ? true : undefined}
        />
        <p id={hintId} className="hint">
          The first start of the service prints an admin token; more are made with <code>npm run token -- create</code>. It is kept in this tab only, until you sign out or close it.
        </p>
        {error && (
          <p id={errorId} className="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
