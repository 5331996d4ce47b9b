// An interception card that refreshes itself (`useRefetchableFragment` → `node(id:)`).
import { graphql } from 'react-relay';

export const interceptionsQuery = graphql`
  query InterceptionNodeListQuery($first: Int, $filter: InterceptionFilter) {
    interceptions(first: $first, filter: $filter) {
      totalCount
      edges {
        node {
          id
          ...InterceptionNode_interception
        }
      }
    }
  }
`;

export const interceptionFragment = graphql`
  fragment InterceptionNode_interception on Interception
  @refetchable(queryName: "InterceptionNodeRefetchQuery") {
    id
    interceptionId
    client
    provider
    providerName
    model
    startedAt
    endedAt
    initiator {
      id
      username
    }
    tokenUsages {
      inputTokens
      outputTokens
      createdAt
    }
    userPrompts {
      prompt
      createdAt
    }
    toolUsages {
      tool
      injected
      invocationError
    }
  }
`;
