// Drives GraphiQL in headless Debian Chromium with playwright-core (no browser download), as a
// developer would: open the page, put the token in the Headers pane, write the query, press run,
// read the result from the result window. Run by tests/e2e/test_graphiql_browser.py with
// NODE_PATH=tests/frontend/node_modules and one JSON argument:
//   {url, chromium, headers: {...}, query, screenshot, probe, keepDefaults, live}
// It prints one JSON line:
//   {result, resultText, blocked, requests, headersSent, eventStreams, consoleErrors, probe,
//    opened, live}.
// With keepDefaults it types nothing: it runs what the page opens on, reported as `opened`
// ({query, headers}: the editors' text, which holds the test's own token).
// With live (`query` is a subscription of `sessions` events) it watches the result window
// instead: once it shows an EXISTING event it asks the test for {"shown": "EXISTING"} (the test
// appends a session, answering with anything), waits for the ADDED event, then presses stop and
// asks for {"stopped": true}. `live` reports every value the result window showed, in order
// (`shown`, parsed), and whether the subscription still ran before stop (`runningBeforeStop`).
// `eventStreams` lists the header names of each POST that asked for `text/event-stream`.
// Every request that does not go to 127.0.0.1 is aborted and listed in `blocked`.
'use strict';

const { TIMEOUT_MS, ask, isLoopback, launch, main } = require('./chromium.cjs');

const RESULT_EDITOR = '.result-window .CodeMirror';

// GraphiQL's editors are CodeMirror 5 instances, reachable from their DOM node.
async function setEditor(page, selector, text) {
  await page.waitForSelector(selector, { state: 'visible', timeout: TIMEOUT_MS });
  await page.$eval(selector, (node, value) => node.CodeMirror.setValue(value), text);
}

async function getEditor(page, selector) {
  await page.waitForSelector(selector, { state: 'visible', timeout: TIMEOUT_MS });
  return page.$eval(selector, (node) => node.CodeMirror.getValue());
}

// A page whose requests are all recorded, and aborted (and listed) unless to loopback.
async function openPage(browser, options, report) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (isLoopback(url)) return route.continue();
    report.blocked.push(url);
    return route.abort('internetdisconnected');
  });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT_MS);
  page.on('console', (message) => {
    // Once the probe started, errors are its own (its fetch fails on purpose).
    if (message.type() === 'error' && !report.probe) report.consoleErrors.push(message.text());
  });
  page.on('request', (request) => {
    report.requests.push(`${request.method()} ${request.url()}`);
    if (request.method() === 'POST' && request.url() === options.url) {
      // Which header names the page sent (never their values: they are credentials).
      const names = Object.keys(request.headers()).sort();
      report.headersSent.push(names);
      if ((request.headers().accept || '').includes('text/event-stream')) {
        report.eventStreams.push(names);
      }
    }
  });
  return page;
}

// What a developer does: headers pane, query editor (or what the page opened on), then run.
async function typeOperation(page, options, report) {
  await page.goto(options.url, { waitUntil: 'load' });
  await page.waitForSelector('.graphiql-execute-button');
  await page.click('.graphiql-editor-tools button[data-name="headers"]');
  const headersEditor =
    'section.graphiql-editor-tool[aria-label="Headers"] .graphiql-editor:not(.hidden) .CodeMirror';
  const queryEditor = '.graphiql-query-editor .CodeMirror';
  if (options.keepDefaults) {
    // As a newcomer opens it: what the page shows before anything is typed, then run as is.
    report.opened = {
      query: await getEditor(page, queryEditor),
      headers: await getEditor(page, headersEditor),
    };
  } else {
    await setEditor(page, headersEditor, JSON.stringify(options.headers, null, 2));
    await setEditor(page, queryEditor, options.query);
    // GraphiQL takes the operation name from the editor after a debounce; pressing run before
    // would send the opening query's name (`Dashboard`). The page's URL gets the new query (the
    // page's onEditQuery) once GraphiQL has taken it in.
    await page.waitForFunction(
      (query) => new URLSearchParams(window.location.search).get('q') === query,
      options.query,
    );
  }
}

// Run it and read the result window: it holds JSON once the response arrived (nothing, or a
// spinner, before).
async function runQuery(page, options, report) {
  await typeOperation(page, options, report);
  await page.click('.graphiql-execute-button');
  const handle = await page.waitForFunction((selector) => {
    const editor = document.querySelector(selector);
    const value = editor && editor.CodeMirror.getValue();
    return value && value.trim().startsWith('{') ? value : null;
  }, RESULT_EDITOR);
  return JSON.parse(await handle.jsonValue());
}

// Until the result window shows a `sessions` event of `kind` (each event replaces the last).
function waitForEvent(page, kind) {
  return page.waitForFunction(
    ([selector, wanted]) => {
      try {
        const shown = JSON.parse(document.querySelector(selector).CodeMirror.getValue());
        return shown.data.sessions.kind === wanted;
      } catch {
        return false; // empty, or not an event yet
      }
    },
    [RESULT_EDITOR, kind],
  );
}

// A subscription: run it and record every value the result window takes while events arrive.
async function watchSubscription(page, options, report) {
  await typeOperation(page, options, report);
  await page.$eval(RESULT_EDITOR, (node) => {
    window.shownResults = [];
    node.CodeMirror.on('change', (editor) => window.shownResults.push(editor.getValue()));
  });
  await page.click('.graphiql-execute-button');
  await waitForEvent(page, 'EXISTING');
  await ask({ shown: 'EXISTING' });
  await waitForEvent(page, 'ADDED');
  // Still subscribed: GraphiQL's run button is a stop button while a subscription runs.
  const runningBeforeStop = await page.isVisible('.graphiql-execute-button[aria-label^="Stop"]');
  await page.click('.graphiql-execute-button');
  await ask({ stopped: true });
  const shown = await page.evaluate(() => window.shownResults.filter((value) => value.trim()));
  return { shown: shown.map((value) => JSON.parse(value)), runningBeforeStop };
}

// Proof that the blocking works: the page fetches `url` (a CDN URL) itself. It must fail; what it
// recorded is kept apart from what GraphiQL did.
async function probeBlocking(page, url, report) {
  const [blocked, requests] = [report.blocked.length, report.requests.length];
  report.probe = { outcome: 'pending' };
  const outcome = await page.evaluate(
    (target) => fetch(target).then(() => 'loaded', () => 'failed'),
    url,
  );
  report.probe = { outcome, blocked: report.blocked.splice(blocked) };
  report.requests.splice(requests);
}

async function run(options) {
  const browser = await launch(options.chromium);
  const report = {
    blocked: [], requests: [], headersSent: [], eventStreams: [], consoleErrors: [],
  };
  try {
    const page = await openPage(browser, options, report);
    if (options.live) report.live = await watchSubscription(page, options, report);
    else report.result = await runQuery(page, options, report);
    // What is rendered on screen, not only the editor's model.
    report.resultText = await page.innerText('.result-window');
    await page.screenshot({ path: options.screenshot });
    await probeBlocking(page, options.probe, report);
  } finally {
    await browser.close();
  }
  return report;
}

main(run);
