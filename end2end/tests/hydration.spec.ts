import { test, expect, Page } from '@playwright/test';
import { USERS, hydrated, signedIn } from './helpers';

/** Console errors and uncaught page errors, to assert that hydration did not panic. */
function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(e.message));
  return errors;
}

test('connection pages hydrate: a logged-in-user connection, and ?authorize=1 opening the dialog after a reload', async ({ page }) => {
  const errors = watchErrors(page);
  await signedIn(page, USERS.admin);

  // A logged-in-user connection: its users' authorizations load after hydration; the page lives.
  await page.goto('/microservices/connections/my_crm');
  await hydrated(page);
  await expect(page.getByRole('region', { name: "Users' authorizations" })).not.toContainText('Loading…');
  await page.getByRole('button', { name: 'Edit', exact: true }).click();
  await expect(page.getByRole('form', { name: 'Edit connection' })).toBeVisible();

  // An unauthorized connection opened (and reloaded) with ?authorize=1: the dialog opens and
  // its controls answer.
  const connectors = await (await page.request.post('/api/list_connectors')).json();
  const crm = connectors.find((c: { link_name: string }) => c.link_name === 'sandbox_crm');
  const name = `Fresh CRM ${Date.now() % 100000}`;
  const res = await page.request.post('/api/create_connection', {
    form: { 'input[connector_id]': String(crm.id), 'input[display_name]': name, 'input[same_for_all_envs]': 'true', 'input[conn_type]': 'admin' },
  });
  expect(res.ok()).toBeTruthy();
  const link = (await res.json()).link_name;
  await page.goto(`/microservices/connections/${link}?authorize=1`);
  await page.reload();
  await hydrated(page);
  const dialog = page.getByRole('dialog', { name: `Authorize ${name}` });
  await expect(dialog).toBeVisible();
  await dialog.getByRole('button', { name: 'Close' }).click();
  await expect(dialog).toHaveCount(0);
  await page.getByRole('button', { name: 'Authorize Production' }).click();
  await expect(dialog).toBeVisible();

  expect(errors.filter((e) => /panicked|unreachable/.test(e))).toEqual([]);
  await expect(page.locator('.panic-banner')).toHaveCount(0);
});

// A client panic (here: the page the server sent does not match what the client builds, as a
// proxy rewriting the page or a stale cached page would do) leaves the page looking normal with
// every control dead: the banner says so and offers a reload, which works.
test('a client panic shows "Something went wrong" with a Reload that works', async ({ page }) => {
  await page.route('**/login', async (route) => {
    const res = await route.fetch();
    const html = (await res.text()).replace(/<form[\s\S]*?<\/form>/, '<p>changed on the way</p>');
    await route.fulfill({ response: res, body: html });
  });
  await page.goto('/login');
  const banner = page.getByRole('alert').filter({ hasText: 'Something went wrong on this page' });
  await expect(banner).toBeVisible();
  await page.unroute('**/login');
  await banner.getByRole('button', { name: 'Reload' }).click();
  await expect(banner).toHaveCount(0);
  await hydrated(page);
  await expect(page.getByLabel('Email')).toBeVisible();
});
