// Hive Gateway configuration (`hive-gateway supergraph` loads it from this folder):
// the caller's credentials go to the subgraphs, and no other header does.
const FORWARDED = ['coder-session-token', 'authorization'];

export const gatewayConfig = {
  propagateHeaders: {
    fromClientToSubgraphs: ({ request }) =>
      Object.fromEntries(
        FORWARDED.filter((name) => request.headers.has(name)).map((name) => [
          name,
          request.headers.get(name),
        ]),
      ),
  },
};
