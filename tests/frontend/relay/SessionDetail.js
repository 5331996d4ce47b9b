// The session page: its threads (paginated), each with its agentic actions and tool calls.
import { graphql } from 'react-relay';

export const sessionDetailQuery = graphql`
  query SessionDetailQuery($id: ID!) {
    node(id: $id) {
      # Null unless the node is a Session (Relay's typed fragment alias).
      ...SessionDetail_session @alias(as: "session")
    }
  }
`;

export const sessionDetailFragment = graphql`
  fragment SessionDetail_session on Session
  @refetchable(queryName: "SessionDetailThreadsPaginationQuery")
  @argumentDefinitions(
    first: { type: "Int", defaultValue: 10 }
    after: { type: "String" }
  ) {
    id
    sessionId
    client
    providers
    models
    startedAt
    endedAt
    metadata
    initiator {
      id
      username
      name
    }
    tokenUsage {
      inputTokens
      outputTokens
      cacheReadInputTokens
      cacheWriteInputTokens
    }
    threads(first: $first, after: $after) @connection(key: "SessionDetail_threads") {
      totalCount
      edges {
        node {
          id
          ...SessionDetail_thread
        }
      }
    }
  }
`;

export const threadFragment = graphql`
  fragment SessionDetail_thread on Thread {
    threadId
    prompt
    model
    provider
    credentialKind
    credentialHint
    startedAt
    endedAt
    tokenUsage {
      inputTokens
      outputTokens
      metadata
    }
    agenticActions {
      model
      thinking
      tokenUsage {
        inputTokens
        outputTokens
      }
      toolCalls {
        toolCallId
        tool
        serverUrl
        injected
        input
        createdAt
      }
    }
  }
`;
