import 'graphiql/setup-workers/vite';
import 'graphiql/style.css';
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';

/**
 * GraphiQL bundled with its editor workers, so it loads without internet (yoga's own page pulls
 * them from a CDN). Subscriptions go over graphql-ws with the Headers tab as the connection_init
 * payload (@graphiql/toolkit passes them along), which is where the service reads a socket's token.
 */
const url = new URL('/graphql', window.location.href).toString();
const fetcher = createGraphiQLFetcher({ url, subscriptionUrl: url.replace(/^http/, 'ws') });

// Signed in to the dashboard in this tab: start with its token; otherwise say where it goes.
const token = sessionStorage.getItem('entity-sync.token');
const defaultHeaders = JSON.stringify({ Authorization: `Bearer ${token ?? '<paste your API token here>'}` }, null, 2);

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <GraphiQL fetcher={fetcher} defaultHeaders={defaultHeaders} defaultEditorToolsVisibility="headers" />
  </StrictMode>,
);
