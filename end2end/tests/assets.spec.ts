import { test, expect, type APIRequestContext, type Page } from '@playwright/test';
import { existsSync, statSync } from 'node:fs';
import { hydrated, signedInContext, USERS } from './helpers';

// The client's files are named after their content and cached for a year; the page links those
// names; other static files are revalidated; answers are compressed.
test('hashed client files with long-lived caching, compressed', async ({ page, request }) => {
  await page.goto('/login');
  const wasm = await page.locator('link[rel="preload"][href^="/pkg/connections."][href$=".wasm"]').getAttribute('href');
  const css = await page.locator('link#leptos[rel="stylesheet"]').getAttribute('href');
  expect(wasm).toMatch(/^\/pkg\/connections\.[A-Za-z0-9_-]{8,}\.wasm$/);
  expect(css).toMatch(/^\/pkg\/connections\.[A-Za-z0-9_-]{8,}\.css$/);
  // Each page is a lazy route (`--split`): the page names its own chunks beside the main module,
  // so they download side by side, not one after the other.
  const chunks = await page.locator('link[rel="preload"][href$=".wasm"]:not([href^="/pkg/connections."])').evaluateAll(
    (links) => links.map((l) => l.getAttribute('href')!),
  );
  expect(chunks.length).toBeGreaterThan(0);
  for (const chunk of chunks) expect(chunk).toMatch(/^\/pkg\/(chunk_\d+|split___\w+)\.[A-Za-z0-9_-]{8,}\.wasm$/);
  // The sign-in page's own module is among them.
  expect(chunks.filter((c) => c.startsWith('/pkg/split___login_route_view_'))).toHaveLength(1);
  for (const path of [wasm!, css!, ...chunks.slice(0, 3)]) {
    const res = await request.get(path, { headers: { 'Accept-Encoding': 'br, gzip' } });
    expect(res.status(), path).toBe(200);
    expect(res.headers()['cache-control'], path).toBe('public, max-age=31536000, immutable');
    expect(res.headers()['content-encoding'], path).toBe('br');
    // Sent as precompressed at build time (brotli quality 11, scripts/precompress.mjs), not
    // compressed again for every download.
    const precompressed = new URL(`../../target/site${path}.br`, import.meta.url);
    expect(existsSync(precompressed), precompressed.pathname).toBe(true);
    expect(Number(res.headers()['content-length']), path).toBe(statSync(precompressed).size);
  }
  const icon = await request.get('/favicon.svg');
  expect(icon.headers()['cache-control']).toBe('no-cache');
  expect(icon.headers()['content-type']).toContain('image/svg+xml');
  // Browsers ask for /favicon.ico on their own: it answers (no 404), with the same icon.
  const ico = await request.get('/favicon.ico', { maxRedirects: 0 });
  expect(ico.status()).toBe(308);
  expect(ico.headers()['location']).toBe('/favicon.svg');
  expect((await request.get('/favicon.ico')).headers()['content-type']).toContain('image/svg+xml');
  // The page itself is not cached as a file would be.
  const html = await request.get('/login');
  expect(html.headers()['cache-control'] ?? '').not.toContain('immutable');
});

// The budget of issues 12 and 15, kept: what the browser fetches for a first page as WASM and
// JS — the main module, its glue, the chunk loader and the page's chunks — is at most 300 KB
// sent with brotli (README, "Client weight"). Two first pages: the sign-in page for a new
// visitor, and the Applications page for a signed-in visitor coming back (a browser with the
// session cookie and nothing cached).
async function firstLoad(page: Page, request: APIRequestContext, path: string) {
  const fetched = new Set<string>();
  page.on('request', (r) => {
    const p = new URL(r.url()).pathname;
    if (/^\/pkg\/.+\.(wasm|js)$/.test(p)) fetched.add(p);
  });
  await page.goto(path);
  await hydrated(page);
  await page.waitForLoadState('networkidle');
  expect([...fetched].some((p) => p.endsWith('.wasm'))).toBe(true);
  let total = 0;
  for (const p of fetched) {
    const res = await request.get(p, { headers: { 'Accept-Encoding': 'br' } });
    expect(res.headers()['content-encoding'], p).toBe('br');
    // The bytes on the wire (the client decompresses the body it hands back).
    total += Number(res.headers()['content-length']);
  }
  console.log(`first page ${path}: ${fetched.size} files, ${total} bytes of WASM + JS with brotli`);
  return total;
}

test('the first page downloads at most 300 KB of WASM and JS, brotli', async ({ page, request }) => {
  expect(await firstLoad(page, request, '/login')).toBeLessThanOrEqual(300_000);
});

test('a signed-in visitor coming back downloads at most 300 KB of WASM and JS, brotli', async ({ page, request }) => {
  await signedInContext(page.context(), USERS.admin);
  expect(await firstLoad(page, request, '/')).toBeLessThanOrEqual(300_000);
  await expect(page.getByRole('heading', { name: 'Applications' })).toBeVisible();
});
