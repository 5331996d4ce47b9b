// The sessions page: a paginated list (`usePaginationFragment`), newest activity first.
import { graphql } from 'react-relay';

export const sessionsListQuery = graphql`
  query SessionsListQuery($first: Int, $filter: SessionFilter) {
    ...SessionsList_query @arguments(first: $first, filter: $filter)
  }
`;

export const sessionsListFragment = graphql`
  fragment SessionsList_query on Query
  @refetchable(queryName: "SessionsListPaginationQuery")
  @argumentDefinitions(
    first: { type: "Int", defaultValue: 20 }
    after: { type: "String" }
    filter: { type: "SessionFilter" }
  ) {
    sessions(first: $first, after: $after, filter: $filter)
      @connection(key: "SessionsList_sessions", filters: ["filter"]) {
      totalCount
      edges {
        node {
          id
          ...SessionsList_row
        }
      }
    }
  }
`;

export const sessionRowFragment = graphql`
  fragment SessionsList_row on Session {
    sessionId
    client
    providers
    models
    lastActiveAt
    lastPrompt
    threadCount
    initiator {
      id
      username
      avatarUrl
    }
    tokenUsage {
      inputTokens
      outputTokens
    }
  }
`;
