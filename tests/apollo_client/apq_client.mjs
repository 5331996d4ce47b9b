// Apollo Client with its persisted-queries link against the gateway:
//   node apq_client.mjs URL TOKEN get|post|manifest=PATH
// Runs the app's query (with variables) twice without the cache, then prints the results as JSON.
// get/post: automatic persisted queries. The link sends the hash first; on PersistedQueryNotFound
// it sends hash and query (registration); the second run is hash-only. `get` uses GET for hashed
// queries (useGETForHashedQueries).
// manifest=PATH: persisted query lists. Ids come from the manifest that
// generate-persisted-query-manifest wrote; the query text is never sent.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { ApolloClient, HttpLink, InMemoryCache } from "@apollo/client";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";
import { generatePersistedQueryIdsFromManifest } from "@apollo/persisted-query-lists";
import { MODELS_BY_PREFIX } from "./app/operations.js";

const [url, token, mode] = process.argv.slice(2);
if (!url || !token || !/^(get|post|manifest=.+)$/.test(mode ?? "")) {
  console.error("usage: node apq_client.mjs URL TOKEN get|post|manifest=PATH");
  process.exit(2);
}

function persistedQueryLink() {
  if (mode.startsWith("manifest=")) {
    const path = mode.slice("manifest=".length);
    return new PersistedQueryLink(
      generatePersistedQueryIdsFromManifest({
        loadManifest: async () => JSON.parse(await readFile(path, "utf8")),
      }),
    );
  }
  const sha256 = (text) => createHash("sha256").update(text).digest("hex");
  return new PersistedQueryLink({ sha256, useGETForHashedQueries: mode === "get" });
}

const link = persistedQueryLink().concat(
  new HttpLink({ uri: url, headers: { "Coder-Session-Token": token } }),
);
const client = new ApolloClient({ link, cache: new InMemoryCache() });

const results = [];
for (let run = 0; run < 2; run += 1) {
  const { data, error } = await client.query({
    query: MODELS_BY_PREFIX,
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
