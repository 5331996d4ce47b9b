// A real subscription client against the gateway, printing each event as one JSON line.
//
//   node live_client.mjs <sse|apollo> <url> <token> <query> [variables-json]
//
// sse: graphql-sse's client in distinct-connections mode (one HTTP request per subscription).
// apollo: Apollo Client's HttpLink, which sends subscriptions as multipart HTTP.
// Each line is {"data": ..., "errors": ...} as received; {"complete": true} when the stream
// completes, {"error": "..."} when the client reports a failure. Stdin closing ends the process
// (the test hanging up).
import { createClient } from "graphql-sse";
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";

const [mode, url, token, query, variablesJson] = process.argv.slice(2);
const variables = variablesJson ? JSON.parse(variablesJson) : {};
const headers = { "Coder-Session-Token": token };
const print = (value) => process.stdout.write(JSON.stringify(value) + "\n");

process.stdin.on("end", () => process.exit(0));
process.stdin.resume();

if (mode === "sse") {
  const client = createClient({ url, headers, retryAttempts: 0 });
  try {
    for await (const result of client.iterate({ query, variables })) {
      print(result);
    }
    print({ complete: true });
  } catch (error) {
    print({ error: String(error?.message ?? error) });
  }
  process.exit(0);
} else if (mode === "apollo") {
  const client = new ApolloClient({
    link: new HttpLink({ uri: url, headers }),
    cache: new InMemoryCache(),
  });
  client.subscribe({ query: gql(query), variables, errorPolicy: "all" }).subscribe({
    next: (result) => print({ data: result.data ?? null, errors: result.error ? [{ message: String(result.error.message) }] : undefined }),
    error: (error) => {
      print({ error: String(error?.message ?? error) });
      process.exit(0);
    },
    complete: () => {
      print({ complete: true });
      process.exit(0);
    },
  });
} else {
  print({ error: `unknown mode ${mode}` });
  process.exit(2);
}
