import { useQuery } from '@tanstack/react-query';
import { Link } from 'wouter';
import { request } from '../api.ts';
import { Page, QueryState } from '../components/page.tsx';
import { subsetText } from '../components/subset.tsx';
import { Ago, useNow } from '../components/time.tsx';
import { graphql } from '../graphql.ts';
import { useSession } from '../session.tsx';

const TokensQuery = graphql(`
  query Tokens {
    apiTokens { id name role deviceId datasets subset { property values } createdAt revokedAt }
  }
`);

/**
 * The API tokens, for an administrator: who each one is (role, device), what it may use (datasets)
 * and which part of them it sees (its subset). Subsets are changed with `setTokenSubset`.
 */
export function TokensView() {
  const { token } = useSession();
  const now = useNow(30_000);
  const tokens = useQuery({ queryKey: ['tokens'], queryFn: () => request(token, TokensQuery) });
  return (
    <Page title="Tokens" crumbs={<Link href="/">Datasets</Link>}>
      <p className="muted">
        Every API token, oldest first. A device sees the records of its datasets that match its subset; an administrator moves a device to another share with{' '}
        <code>setTokenSubset</code>, and the device's next sync drops what left it and gets what entered.
      </p>
      {!tokens.data ? (
        <QueryState pending={tokens.isPending} error={tokens.error} what="the tokens" />
      ) : (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">API tokens with their role, device, datasets and subset</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Role</th>
                <th scope="col">Device</th>
                <th scope="col">Datasets</th>
                <th scope="col">Subset</th>
                <th scope="col">Made</th>
              </tr>
            </thead>
            <tbody>
              {tokens.data.apiTokens.map((t) => (
                <tr key={t.id} className={t.revokedAt ? 'muted' : undefined}>
                  <th scope="row">
                    {t.name}
                    {t.revokedAt && <span className="tag"> revoked</span>}
                  </th>
                  <td>{t.role.toLowerCase()}</td>
                  <td>{t.deviceId ?? <span className="muted">any</span>}</td>
                  <td>{t.datasets ? t.datasets.join(', ') : <span className="muted">all</span>}</td>
                  <td>{t.subset ? subsetText(t.subset) : <span className="muted">whole datasets</span>}</td>
                  <td>
                    <Ago at={t.createdAt} now={now} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Page>
  );
}
