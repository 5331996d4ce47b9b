// Serve a supergraph through Apollo Gateway + Apollo Server on 127.0.0.1.
// Usage: node apollo_gateway.mjs SUPERGRAPH_FILE PORT   (prints "ready <url>" once listening).
// The caller's credentials (`Coder-Session-Token`, `Authorization`) go to every subgraph request
// of that operation, and no other client header does.
import { ApolloGateway, RemoteGraphQLDataSource } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { readFileSync } from 'node:fs';

const FORWARDED = ['coder-session-token', 'authorization'];

class ForwardingDataSource extends RemoteGraphQLDataSource {
  willSendRequest({ request, context }) {
    for (const [name, value] of Object.entries(context.forwarded ?? {})) {
      request.http.headers.set(name, value);
    }
  }
}

const [supergraphFile, port] = process.argv.slice(2);
const gateway = new ApolloGateway({
  supergraphSdl: readFileSync(supergraphFile, 'utf8'),
  buildService: ({ url }) => new ForwardingDataSource({ url }),
});
// Subgraph errors keep their message and `extensions.code`, never a gateway stack trace.
const server = new ApolloServer({ gateway, includeStacktraceInErrorResponses: false });
const { url } = await startStandaloneServer(server, {
  listen: { host: '127.0.0.1', port: Number(port) },
  context: async ({ req }) => ({
    forwarded: Object.fromEntries(
      FORWARDED.filter((name) => typeof req.headers[name] === 'string').map((name) => [
        name,
        req.headers[name],
      ]),
    ),
  }),
});
console.log(`ready ${url}`);

const stop = async () => {
  await server.stop();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
