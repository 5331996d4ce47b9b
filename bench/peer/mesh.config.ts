// The peer of `make bench-peer`: GraphQL Mesh composes the stand-in's OpenAPI document into a
// supergraph that Hive Gateway serves. The document has no OpenAPI `links`, so the
// `additionalTypeDefs` below nest a session's threads under each session of the list (one query
// per dashboard, as with our gateway); `operationHeaders` forwards the caller's token upstream.
import { defineConfig } from '@graphql-mesh/compose-cli';
import { loadOpenAPISubgraph } from '@omnigraph/openapi';

export const composeConfig = defineConfig({
  subgraphs: [
    {
      sourceHandler: loadOpenAPISubgraph('AIBridge', {
        // The document as `/api/v2/aibridge/openapi.json` serves it (bench/peer.py saves it here).
        source: process.env.PEER_OPENAPI || './openapi.json',
        // Its `servers` entry is relative (`/api/v2`): the upstream base the paths hang off.
        endpoint: process.env.PEER_ENDPOINT || 'http://127.0.0.1:8081/api/v2',
        operationHeaders: {
          'Coder-Session-Token': "{context.headers['coder-session-token']}",
        },
      }),
    },
  ],
  additionalTypeDefs: /* GraphQL */ `
    extend type codersdk_AIBridgeSession {
      "One page of this session's threads (GET /aibridge/sessions/{id})."
      thread_page(limit: Int, after_id: UUID): get_ai_bridge_session_threads_response
        @resolveTo(
          sourceName: "AIBridge"
          sourceTypeName: "Query"
          sourceFieldName: "get_ai_bridge_session_threads"
          requiredSelectionSet: "{ id }"
          sourceArgs: { session_id: "{root.id}", limit: "{args.limit}", after_id: "{args.after_id}" }
        )
    }
  `,
});
