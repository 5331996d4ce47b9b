// Apollo Client with its persisted-queries link against the gateway:
//   node apq_client.mjs URL TOKEN get|post
// Runs the same query (with variables) twice without the cache, then prints the results as JSON.
// The link sends the hash first; on PersistedQueryNotFound it sends hash and query (registration);
// the second run is hash-only. `get` uses GET for hashed queries (useGETForHashedQueries).
import { createHash } from "node:crypto";
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";

const [url, token, method] = process.argv.slice(2);
if (!url || !token || !["get", "post"].includes(method)) {
  console.error("usage: node apq_client.mjs URL TOKEN get|post");
  process.exit(2);
}

const sha256 = (text) => createHash("sha256").update(text).digest("hex");
const link = new PersistedQueryLink({ sha256, useGETForHashedQueries: method === "get" }).concat(
  new HttpLink({ uri: url, headers: { "Coder-Session-Token": token } }),
);
const client = new ApolloClient({ link, cache: new InMemoryCache() });

const MODELS = gql`
  query ModelsByPrefix($prefix: String) {
    models(prefix: $prefix)
  }
`;

const results = [];
for (let run = 0; run < 2; run += 1) {
  const { data, error } = await client.query({
    query: MODELS,
    variables: { prefix: "model-000" },
    fetchPolicy: "network-only",
  });
  if (error) {
    console.error(String(error));
    process.exit(1);
  }
  results.push(data);
}
console.log(JSON.stringify({ results }));
