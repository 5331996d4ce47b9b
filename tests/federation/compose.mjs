// Compose subgraphs into an Apollo Federation 2 supergraph with @apollo/composition.
//
// Usage: node compose.mjs [--sdl NAME=FILE]... [-o FILE] NAME=URL...
//   NAME=URL       a subgraph and its routing URL; its SDL is fetched from the running server
//                  with `{ _service { sdl } }` (public: no credentials are sent or needed)
//   --sdl NAME=FILE  read that subgraph's SDL from FILE instead (e.g. our schema.graphql)
//   -o FILE        write the supergraph to FILE (default: stdout)
// Composition errors are printed one per line on stderr, with exit status 1; nothing is written.
import { composeServices } from '@apollo/composition';
import { parse } from 'graphql';
import { readFileSync, writeFileSync } from 'node:fs';

const FETCH_TIMEOUT_MS = 10_000;
const USAGE = 'usage: node compose.mjs [--sdl NAME=FILE]... [-o FILE] NAME=URL...';

function fail(message) {
  console.error(message);
  process.exit(1);
}

function splitPair(text, what) {
  const at = text.indexOf('=');
  if (at <= 0 || at === text.length - 1) fail(`expected ${what}, got ${JSON.stringify(text)}`);
  return [text.slice(0, at), text.slice(at + 1)];
}

function parseArgs(argv) {
  const subgraphs = [];
  const sdlFiles = new Map();
  let output = null;
  for (let i = 0; i < argv.length; i += 1) {
    if (argv[i] === '--sdl') sdlFiles.set(...splitPair(argv[++i] ?? '', 'NAME=FILE'));
    else if (argv[i] === '-o') output = argv[++i] ?? fail('-o needs a file');
    else subgraphs.push(splitPair(argv[i], 'NAME=URL'));
  }
  if (subgraphs.length === 0) fail(USAGE);
  for (const name of sdlFiles.keys()) {
    if (!subgraphs.some(([known]) => known === name)) fail(`--sdl ${name}: no ${name}=URL given`);
  }
  return { subgraphs, sdlFiles, output };
}

async function fetchSdl(name, url) {
  let response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ _service { sdl } }' }),
      signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    });
  } catch (error) {
    fail(`${name}: cannot reach ${url}: ${error.message}`);
  }
  const body = await response.json().catch(() => null);
  const sdl = body?.data?._service?.sdl;
  if (!response.ok || typeof sdl !== 'string') {
    fail(`${name}: ${url} answered ${response.status} without { _service { sdl } }`);
  }
  return sdl;
}

const { subgraphs, sdlFiles, output } = parseArgs(process.argv.slice(2));
const services = await Promise.all(
  subgraphs.map(async ([name, url]) => {
    const sdl = sdlFiles.has(name)
      ? readFileSync(sdlFiles.get(name), 'utf8')
      : await fetchSdl(name, url);
    return { name, url, typeDefs: parse(sdl) };
  }),
);
const result = composeServices(services);
if (result.errors?.length) {
  fail(result.errors.map((e) => `${e.extensions?.code ?? 'ERROR'}: ${e.message}`).join('\n'));
}
for (const hint of result.hints ?? []) {
  console.error(`hint ${hint.definition.code}: ${hint.message}`);
}
if (output) writeFileSync(output, result.supergraphSdl);
else process.stdout.write(result.supergraphSdl);
