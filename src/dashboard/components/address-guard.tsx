import { Component, type ReactNode } from 'react';
import { Link } from 'wouter';

/**
 * Catches what a view throws while it draws, so one bad address never blanks the whole
 * dashboard: a route parameter that is not valid percent-encoding (`#/datasets/%/conflicts`)
 * makes decodeURIComponent throw a URIError, and any route added later is covered too.
 * Keyed by the location in main.tsx, so going elsewhere starts afresh.
 */
export class AddressGuard extends Component<{ children: ReactNode }, { error: Error | null }> {
  override state: { error: Error | null } = { error: null };

  static getDerivedStateFromError(error: Error) {
    return { error };
  }

  override render() {
    const { error } = this.state;
    if (!error) return this.props.children;
    const badAddress = error instanceof URIError;
    return (
      <>
        <h1 tabIndex={-1}>{badAddress ? 'Not found: this address is not valid' : 'This view failed'}</h1>
        <p role="alert">
          {badAddress
            ? 'The address has a part that cannot be read (a stray "%" perhaps), so it names no dataset or record.'
            : `Something went wrong while drawing it: ${error.message}`}{' '}
          <Link href="/">Back to the datasets</Link>.
        </p>
      </>
    );
  }
}
