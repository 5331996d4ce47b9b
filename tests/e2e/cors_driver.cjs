// Opens a dashboard page (served by tests/e2e/test_cors_browser.py on its own loopback port) in
// headless Chromium and has the page call the gateway on another port, as a frontend on its own
// origin does: fetch with Coder-Session-Token and Content-Type: application/json, so Chromium
// sends a CORS preflight first. One JSON argument:
//   {chromium, page, token, calls: [{kind: "graphql" | "csv", gateway}]}
// It prints one JSON line: {results, shown, consoleErrors, requests}: what each call of the page
// returned (window.callGateway), the page's own log as shown, console errors, every request URL.
//
// No request routing here, unlike graphiql_driver.cjs: with a route installed, playwright-core
// answers Chromium's preflights itself (a permissive 204) instead of sending them, which would
// hide the gateway's answer. Chromium's resolver (chromium.cjs) keeps the page on loopback.
'use strict';

const { TIMEOUT_MS, launch, main } = require('./chromium.cjs');

async function run(options) {
  const browser = await launch(options.chromium);
  const report = { results: [], consoleErrors: [], requests: [] };
  try {
    // A fresh context: its own network state, so its preflight cache starts empty.
    const context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT_MS);
    page.on('console', (message) => {
      if (message.type() === 'error') report.consoleErrors.push(message.text());
    });
    page.on('request', (request) => report.requests.push(`${request.method()} ${request.url()}`));
    await page.goto(options.page, { waitUntil: 'load' });
    for (const call of options.calls) {
      // One after the other: the second call finds the first one's preflight in the cache.
      report.results.push(
        await page.evaluate(
          ([kind, gateway, token]) => window.callGateway(kind, gateway, token),
          [call.kind, call.gateway, options.token],
        ),
      );
    }
    report.shown = await page.innerText('#log');
  } finally {
    await browser.close();
  }
  return report;
}

main(run);
