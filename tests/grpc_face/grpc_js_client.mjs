// A gRPC client we did not write the stack of: @grpc/grpc-js + @grpc/proto-loader, reading the
// .proto files. Usage: node grpc_js_client.mjs ADDRESS TOKEN SESSION_ID
// Prints one JSON object: every session id page by page, one session with its threads, and the
// status code + ErrorInfo reason of a few failing calls.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const protoRoot = path.resolve(here, '../../proto');
const [address, token, sessionId] = process.argv.slice(2);

const definition = protoLoader.loadSync(
  ['aibridge/v1/session_service.proto', 'aibridge/v1/catalog_service.proto'],
  { includeDirs: [protoRoot], keepCase: true, longs: Number, defaults: true, oneofs: true },
);
const v1 = grpc.loadPackageDefinition(definition).aibridge.v1;
const sessions = new v1.SessionService(address, grpc.credentials.createInsecure());

function call(method, request, metadata) {
  return new Promise((resolve) => {
    sessions[method](request, metadata, { deadline: Date.now() + 20000 }, (error, reply) =>
      resolve({ error, reply }),
    );
  });
}

function withToken(value) {
  const metadata = new grpc.Metadata();
  if (value) metadata.set('coder-session-token', value);
  return metadata;
}

// google.rpc.Status from `grpc-status-details-bin`, decoded with protobufjs (proto-loader's
// own parser) from the two messages' field numbers (google/rpc/status.proto, error_details.proto).
const rpc = protobuf.Root.fromJSON({
  nested: {
    Status: { fields: { code: { type: 'int32', id: 1 }, message: { type: 'string', id: 2 },
      details: { rule: 'repeated', type: 'Any', id: 3 } } },
    Any: { fields: { type_url: { type: 'string', id: 1 }, value: { type: 'bytes', id: 2 } } },
    ErrorInfo: { fields: { reason: { type: 'string', id: 1 }, domain: { type: 'string', id: 2 } } },
  },
});
function reasonOf(error) {
  const raw = error.metadata.get('grpc-status-details-bin')[0];
  if (!raw) return null;
  const status = rpc.lookupType('Status').decode(raw);
  const info = status.details.find((d) => d.type_url.endsWith('/google.rpc.ErrorInfo'));
  return info ? rpc.lookupType('ErrorInfo').decode(info.value).reason : null;
}

const out = { pages: [], total: null, session: null, errors: {} };
let pageToken = '';
for (let page = 0; page < 200; page += 1) {
  const { error, reply } = await call(
    'ListSessions', { page_size: 50, page_token: pageToken }, withToken(token),
  );
  if (error) throw error;
  out.pages.push(reply.sessions.map((s) => s.session_id));
  out.total = reply.total_size;
  pageToken = reply.next_page_token;
  if (!pageToken) break;
}
{
  const { error, reply } = await call(
    'GetSession',
    { session_id: sessionId, read_mask: { paths: ['session_id', 'thread_count', 'threads'] },
      thread_page_size: 5 },
    withToken(token),
  );
  if (error) throw error;
  out.session = {
    session_id: reply.session.session_id,
    thread_count: reply.session.thread_count,
    thread_ids: reply.session.threads.map((t) => t.thread_id),
    next: reply.session.threads_next_page_token !== '',
  };
}
for (const [name, method, request, metadata] of [
  ['unauthenticated', 'ListSessions', {}, withToken('')],
  ['not_found', 'GetSession', { session_id: 'no-such-session' }, withToken(token)],
  ['bad_page_size', 'ListSessions', { page_size: 100000 }, withToken(token)],
]) {
  const { error } = await call(method, request, metadata);
  out.errors[name] = error ? { code: grpc.status[error.code], reason: reasonOf(error) } : null;
}
sessions.close();
console.log(JSON.stringify(out));
