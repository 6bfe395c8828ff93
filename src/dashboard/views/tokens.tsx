import { useInfiniteQuery } from '@tanstack/react-query';
import { Link } from 'wouter';
import { request } from '../api.ts';
import { Page, QueryState } from '../components/page.tsx';
import { subsetText } from '../components/subset.tsx';
import { Ago, useNow } from '../components/time.tsx';
import { graphql } from '../graphql.ts';
import { useSession } from '../session.tsx';

const TokensQuery = graphql(`
  query Tokens($after: String) {
    apiTokens(first: 100, after: $after) {
      nodes { id name role deviceId datasets subset { property values } createdAt revokedAt }
      pageInfo { hasNextPage endCursor }
    }
  }
`);

/**
 * The API tokens, for an administrator, 100 at a time (oldest first, "Show more tokens" for the next): who each one is (role, device), what it may use (datasets)
 * and which part of them it sees (its subset). Subsets are changed with `setTokenSubset`.
 */
export function TokensView() {
  const { token } = useSession();
  const now = useNow(30_000);
  const tokens = useInfiniteQuery({
    queryKey: ['tokens'],
    queryFn: ({ pageParam }) => request(token, TokensQuery, { after: pageParam }),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => (last.apiTokens.pageInfo.hasNextPage ? last.apiTokens.pageInfo.endCursor : null),
  });
  const rows = tokens.data?.pages.flatMap((p) => p.apiTokens.nodes) ?? [];
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
              {rows.map((t) => (
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
      {tokens.hasNextPage && (
        <button type="button" onClick={() => void tokens.fetchNextPage()} disabled={tokens.isFetchingNextPage}>
          Show more tokens
        </button>
      )}
    </Page>
  );
}
