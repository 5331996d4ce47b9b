// Run graphql-http's auditServer (the GraphQL-over-HTTP spec's reference audit) against a URL.
// Usage: node audit.mjs URL [TOKEN [ORIGIN]]. Prints one JSON line per result, then a JSON summary
// ({"ok": n, "warn": n, "error": n, "notice": n}); exits 0 whatever the results (the caller judges).
import { auditServer } from 'graphql-http';

const [url, token, origin] = process.argv.slice(2);
if (!url) {
  console.error('usage: node audit.mjs URL [TOKEN [ORIGIN]]');
  process.exit(2);
}

// The gateway forwards the caller's Coder token; every audit request carries it (and, given an
// origin, the `Origin` a browser page there would send).
const fetchFn = (input, init = {}) => {
  const headers = new Headers(init.headers);
  if (token) headers.set('Coder-Session-Token', token);
  if (origin) headers.set('Origin', origin);
  return fetch(input, { ...init, headers });
};

const results = await auditServer({ url, fetchFn });
const counts = { ok: 0, warn: 0, error: 0, notice: 0 };
for (const result of results) {
  counts[result.status] = (counts[result.status] ?? 0) + 1;
  const line = { status: result.status, id: result.id, name: result.name };
  if (result.status !== 'ok') {
    line.reason = result.reason;
    if (result.response) {
      line.response = {
        status: result.response.status,
        contentType: result.response.headers.get('content-type'),
        body: (await result.response.text()).slice(0, 500),
      };
    }
  }
  console.log(JSON.stringify(line));
}
console.log(JSON.stringify({ summary: counts }));
