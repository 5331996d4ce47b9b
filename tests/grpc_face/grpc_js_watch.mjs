// The live watches through @grpc/grpc-js + @grpc/proto-loader, reading the .proto files.
// Usage: node grpc_js_watch.mjs ADDRESS TOKEN SESSION_ID
// WatchSessions until SESSION_ID (appended by the test meanwhile) is ENDED, then hangs up;
// WatchSession of it from its existing threads to its completion; WatchSession of an unknown id.
// Prints one JSON object: the events and each call's final status (+ ErrorInfo reason).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const protoRoot = path.resolve(here, '../../proto');
const [address, token, sessionId] = process.argv.slice(2);

const definition = protoLoader.loadSync(['aibridge/v1/session_service.proto'], {
  includeDirs: [protoRoot], keepCase: true, longs: Number, enums: String, defaults: true,
  oneofs: true,
});
const v1 = grpc.loadPackageDefinition(definition).aibridge.v1;
const sessions = new v1.SessionService(address, grpc.credentials.createInsecure());
const metadata = new grpc.Metadata();
metadata.set('coder-session-token', token);

// ErrorInfo.reason from `grpc-status-details-bin` (google/rpc/status.proto, error_details.proto).
const rpc = protobuf.Root.fromJSON({
  nested: {
    Status: { fields: { details: { rule: 'repeated', type: 'Any', id: 3 } } },
    Any: { fields: { type_url: { type: 'string', id: 1 }, value: { type: 'bytes', id: 2 } } },
    ErrorInfo: { fields: { reason: { type: 'string', id: 1 } } },
  },
});
function reasonOf(error) {
  const raw = error.metadata?.get('grpc-status-details-bin')[0];
  if (!raw) return null;
  const info = rpc.lookupType('Status').decode(raw).details
    .find((d) => d.type_url.endsWith('/google.rpc.ErrorInfo'));
  return info ? rpc.lookupType('ErrorInfo').decode(info.value).reason : null;
}

// Runs a server stream: `onEvent(event, call)` per event; resolves with its final status.
function stream(method, request, onEvent) {
  return new Promise((resolve) => {
    const call = sessions[method](request, metadata, { deadline: Date.now() + 60000 });
    call.on('data', (event) => onEvent(event, call));
    call.on('error', (error) => resolve({ code: grpc.status[error.code], reason: reasonOf(error) }));
    call.on('status', (status) => {
      if (status.code === grpc.status.OK) resolve({ code: 'OK', reason: null });
    });
  });
}

const out = { sessions: [], timeline: [] };
out.sessions_status = await stream('WatchSessions', { include_existing: false }, (event, call) => {
  if (event.event !== 'session' || event.session.session_id !== sessionId) return;
  out.sessions.push({
    kind: event.kind, thread_count: event.session.thread_count,
    observed: event.observe_time.seconds > 0,
  });
  if (event.kind === 'SESSION_EVENT_KIND_ENDED') call.cancel();
});
out.timeline_status = await stream(
  'WatchSession', { session_id: sessionId, include_existing: true },
  (event) => out.timeline.push({
    kind: event.kind, session_id: event.session?.session_id ?? null,
    thread_id: event.event === 'thread' ? event.thread.thread_id : null,
  }),
);
out.unknown_status = await stream('WatchSession', { session_id: 'no-such-session' }, () => {});
sessions.close();
console.log(JSON.stringify(out));
