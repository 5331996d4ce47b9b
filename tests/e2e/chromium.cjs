// What every browser driver of tests/e2e shares: headless Debian Chromium launched by
// playwright-core (no browser download), kept on loopback, and the driver's protocol (one JSON
// argument in, one JSON line out; a failure prints its stack and exits 1). A driver may `ask` the
// test something mid-run (a JSON line `{"ask": …}` out, the answer's JSON line in on stdin).
// Required by the drivers with NODE_PATH=tests/frontend/node_modules (tests/support/chromium.py
// runs them).
'use strict';

const readline = require('node:readline');
const { chromium } = require('playwright-core');

const TIMEOUT_MS = 20000;
// The flags TOOLING.md lists for headless Chromium as root, and a resolver that resolves nothing
// but loopback: even the browser's own background traffic cannot leave the machine.
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
];

function isLoopback(url) {
  const { protocol, hostname } = new URL(url);
  // data: and blob: URLs never touch the network.
  return protocol === 'data:' || protocol === 'blob:' || hostname === '127.0.0.1';
}

function launch(executablePath) {
  return chromium.launch({
    executablePath,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: TIMEOUT_MS,
  });
}

// The test's answers, one JSON line each, read in order (opened on the first question only, so a
// driver that asks nothing never waits on stdin).
const answers = { lines: null, reader: null };

// Ask the test (`run_driver(answer=…)` in tests/support/chromium.py) and wait for its answer,
// e.g. to change the data behind the page while the page watches.
async function ask(question) {
  if (!answers.reader) {
    answers.reader = readline.createInterface({ input: process.stdin });
    answers.lines = answers.reader[Symbol.asyncIterator]();
  }
  process.stdout.write(JSON.stringify({ ask: question }) + '\n');
  const { value, done } = await answers.lines.next();
  if (done) throw new Error(`the test did not answer ${JSON.stringify(question)}`);
  return JSON.parse(value);
}

// Run `drive(options)` on the JSON argument and print its report as one line.
function main(drive) {
  drive(JSON.parse(process.argv[2])).then(
    (report) => {
      if (answers.reader) answers.reader.close();
      process.stdout.write(JSON.stringify(report) + '\n');
    },
    (error) => {
      process.stderr.write(`${error.stack || error}\n`);
      process.exit(1);
    },
  );
}

module.exports = { TIMEOUT_MS, ask, isLoopback, launch, main };
