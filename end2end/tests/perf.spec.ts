import { test, expect, type BrowserContext, type Page } from '@playwright/test';
import { hydrated, signedInContext, USERS } from './helpers';

// A measurement for README (issue 15: "time-to-interactive on a throttled link"), not a test of
// speed: PERF=1 runs it (skipped otherwise) and prints the figures. Chromium's own network
// throttling (CDP) at 10 Mbps down and up with 40 ms latency, cache disabled, a cold page load of
// the sign-in page and of the Applications page for a signed-in visitor: first contentful paint,
// interactive (the client has hydrated: controls answer), and the bytes that crossed the wire.
async function measure(page: Page, context: BrowserContext, path: string) {
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false,
    latency: 40,
    downloadThroughput: (10 * 1000 * 1000) / 8,
    uploadThroughput: (10 * 1000 * 1000) / 8,
  });
  let wire = 0;
  const encodings = new Map<string, string>();
  cdp.on('Network.responseReceived', (e) => {
    const enc = e.response.headers['content-encoding'] ?? e.response.headers['Content-Encoding'] ?? 'identity';
    encodings.set(new URL(e.response.url).pathname, enc);
  });
  cdp.on('Network.loadingFinished', (e) => (wire += e.encodedDataLength));

  await page.goto(path, { waitUntil: 'commit' });
  await hydrated(page);
  const timing = await page.evaluate(() => ({
    fcp: performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? NaN,
    interactive: performance.now(),
  }));
  expect(timing.interactive).toBeGreaterThan(0);
  const wasm = [...encodings].find(([p]) => p.endsWith('.wasm'));
  console.log(
    `PERF ${path}: first contentful paint ${Math.round(timing.fcp)} ms; interactive ${Math.round(timing.interactive)} ms; ` +
      `${Math.round(wire / 1024)} KiB over the wire; wasm sent as ${wasm?.[1] ?? '?'}`,
  );
}

test('first page on a 10 Mbps / 40 ms link', async ({ page, context }) => {
  test.skip(!process.env.PERF, 'set PERF=1 to measure');
  await measure(page, context, '/login');
});

// A signed-in visitor coming back: the session cookie is set through the context's own request
// client (not throttled by CDP), then the Applications page loads cold.
test('a signed-in visitor\'s first page on a 10 Mbps / 40 ms link', async ({ page, context }) => {
  test.skip(!process.env.PERF, 'set PERF=1 to measure');
  await signedInContext(context, USERS.admin);
  await measure(page, context, '/');
});
