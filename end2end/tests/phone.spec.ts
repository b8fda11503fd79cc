import { test, expect } from '@playwright/test';
import { USERS, hydrated, signIn, openConnectionsSlider, signedIn, noSidewaysScroll, withinScreen, expectStacked } from './helpers';

// A phone: 390×844 (issue 15, item 10). Nothing is clipped, nothing scrolls sideways, tables are
// stacked cards whose cells say which column they belong to.
test.use({ viewport: { width: 390, height: 844 } });

test('phone: the top bar wraps (Sign out reachable) and the tables stack', async ({ page }) => {
  // An Operations event of its own (the log is a table only when it has entries), so this file
  // also passes alone on a fresh server.
  await signIn(page, USERS.user, 'not-the-password');
  await expect(page.getByRole('alert')).toHaveText('Wrong email or password.');
  await signedIn(page, USERS.admin);
  const signOut = page.getByRole('button', { name: 'Sign out' });
  await expect(signOut).toBeVisible();
  await withinScreen(page, 'Sign out', await signOut.boundingBox());
  await noSidewaysScroll(page);

  await page.goto('/microservices');
  await hydrated(page);
  // Each cell is labelled by its column, the header row is off screen for sighted users.
  await expectStacked(page, page.getByRole('table', { name: 'Connections' }), 'Status');

  await page.goto('/microservices/connections/sales_crm');
  await hydrated(page);
  await expectStacked(page, page.getByRole('table', { name: 'Authorizations' }), 'Status');

  await page.goto('/operations');
  await hydrated(page);
  await expectStacked(page, page.getByRole('table', { name: 'Operations log' }), 'Time');
});

test('phone: API keys, form records and an import preview stack too', async ({ page }) => {
  await signedIn(page, USERS.admin);

  await page.goto('/settings/api-keys');
  await hydrated(page);
  const form = page.getByRole('form', { name: 'Create an API key' });
  const name = `Phone key ${Date.now() % 100000}`;
  await form.getByLabel('Name').fill(name);
  await form.getByLabel(/Read connections and operations/).check();
  await form.getByRole('button', { name: 'Create key' }).click();
  await expect(page.getByLabel('New API key')).toHaveValue(/^cmk_/);
  const keys = page.getByRole('table', { name: 'API keys' });
  await expect(keys.getByRole('row', { name: new RegExp(name) })).toContainText('Active');
  await expectStacked(page, keys, 'Scopes');

  await page.goto('/app/sales_hub/records/deal_intake');
  await hydrated(page);
  await expectStacked(page, page.getByRole('table', { name: 'Deal Intake records' }), 'deal');

  // An export of Sales Hub previewed as an import: every connection matches.
  await page.goto('/microservices/promotion');
  await hydrated(page);
  await page.getByLabel('Application').selectOption({ label: 'Sales Hub' });
  await page.getByRole('button', { name: 'Export connections' }).click();
  const exported = page.getByLabel('Export (no secrets)');
  await expect(exported).toHaveValue(/sales_crm/);
  await page.getByLabel('Paste an export').fill(await exported.inputValue());
  await page.getByRole('button', { name: 'Preview import' }).click();
  const plan = page.getByRole('table', { name: 'Connections to import' });
  await expect(plan).toContainText('Matched');
  await expectStacked(page, plan, 'Needs authorizing');
});

test('phone: the live slider takes the whole width and closes; the builder lists components above the canvas', async ({ page }) => {
  await signedIn(page, USERS.admin);
  const slider = await openConnectionsSlider(page);
  const box = await slider.boundingBox();
  await withinScreen(page, 'the slider', box);
  expect(box!.width).toBeGreaterThan(380);
  await slider.getByRole('button', { name: 'Close connections' }).click();
  await expect(slider).toBeHidden();

  await page.goto('/app/sales_hub/edit?component=deal_intake');
  await hydrated(page);
  await noSidewaysScroll(page);
  const integrations = page.getByRole('button', { name: 'Integrations' });
  await expect(integrations).toBeVisible();
  await withinScreen(page, 'Integrations', await integrations.boundingBox());
  // The component list is above the canvas, the whole width, not a sidebar taking two thirds.
  const list = (await page.getByRole('navigation', { name: 'Components' }).boundingBox())!;
  const canvas = (await page.getByRole('region', { name: 'Component editor' }).boundingBox())!;
  expect(list.width).toBeGreaterThan(page.viewportSize()!.width * 0.9);
  expect(canvas.y).toBeGreaterThanOrEqual(list.y + list.height - 1);
});

test('desktop: builder component names stay on one line', async ({ page }) => {
  await page.setViewportSize({ width: 1280, height: 800 });
  await signedIn(page, USERS.admin);
  await page.goto('/app/sales_hub/edit?component=deal_intake');
  await hydrated(page);
  const links = page.getByRole('navigation', { name: 'Components' }).getByRole('link');
  expect(await links.count()).toBeGreaterThan(3);
  for (const link of await links.all()) {
    // The name (the text after the kind's label, which has its own line) takes one line.
    const lines = await link.evaluate((el) => {
      const tops = new Set<number>();
      for (const node of Array.from(el.childNodes)) {
        if (node.nodeType !== Node.TEXT_NODE || !node.textContent?.trim()) continue;
        const range = document.createRange();
        range.selectNodeContents(node);
        for (const r of Array.from(range.getClientRects())) tops.add(Math.round(r.top));
      }
      return tops.size;
    });
    expect(lines, await link.innerText()).toBe(1);
  }
});

test('before hydration, buttons look busy and take no click; after, they answer', async ({ page }) => {
  await signedIn(page, USERS.admin);
  // Hold the WASM back so the server-rendered page is seen before it hydrates.
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  await page.route('**/*.wasm', async (route) => {
    await gate;
    await route.continue();
  });
  await page.goto('/microservices/connections/sales_crm', { waitUntil: 'domcontentloaded' });
  const edit = page.getByRole('button', { name: 'Edit', exact: true });
  await expect(edit).toBeAttached();
  expect(await edit.evaluate((el) => getComputedStyle(el).pointerEvents)).toBe('none');
  release();
  await hydrated(page);
  expect(await edit.evaluate((el) => getComputedStyle(el).pointerEvents)).not.toBe('none');
  await edit.click();
  await expect(page.getByRole('form', { name: 'Edit connection' })).toBeVisible();
});
