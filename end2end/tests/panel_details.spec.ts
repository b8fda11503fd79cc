import { test, expect, Page, Locator } from '@playwright/test';
import { USERS, hydrated, consentInPopup, openConnectionsTab, authorizeWithPopup, linkNewIfOffered, authorizeWeatherKey, openConnectionsSlider as openSlider, confirmDialog, ensureRevoked, signedIn } from './helpers';

const BASE = process.env.BASE_URL ?? 'http://127.0.0.1:3000';

function entry(panel: Locator, name: string) {
  return panel.getByRole('listitem', { name, exact: true });
}

async function signedInPage(page: Page, email: string) {
  const ctx = await page.context().browser()!.newContext({ baseURL: BASE });
  const p = await ctx.newPage();
  await signedIn(p, email);
  return { ctx, p };
}

test('live slider: details, switch to another account and back, revoke (admin, API key)', async ({ page }) => {
  await signedIn(page, USERS.admin);
  const slider = await openSlider(page, 'field_service');
  const row = entry(slider, 'Weather');
  await ensureRevoked(slider, 'Weather');

  const authorizeKey = (name: string) =>
    authorizeWeatherKey(page, page.getByRole('dialog', { name: 'Authorize Weather' }), name);
  await row.getByRole('button', { name: 'Authorize Weather' }).click();
  await authorizeKey('Weather main');
  await expect(row).toContainText('Weather main');

  // Clicking the entry shows its permissions and references (links to the components).
  await row.getByRole('button', { name: 'Details of Weather' }).click();
  const details = row.getByRole('region', { name: 'Weather details' });
  await expect(details).toContainText('No specific permissions');
  const link = details.getByRole('list', { name: 'References' }).getByRole('link', { name: 'Site Weather' });
  await expect(link).toHaveAttribute('href', '/app/field_service?component=site_weather');

  // Switch: a new account…
  await details.getByRole('button', { name: 'Switch Weather' }).click();
  await authorizeKey('Weather backup');
  await expect(row).toContainText('Weather backup');
  // …then back to the first one, picked from the accounts authorized before.
  await row.getByRole('button', { name: 'Details of Weather' }).click();
  await row.getByRole('region', { name: 'Weather details' }).getByRole('button', { name: 'Switch Weather' }).click();
  const dialog = page.getByRole('dialog', { name: 'Authorize Weather' });
  const reuse = dialog.getByRole('region', { name: 'Reuse authorization' });
  await reuse.getByLabel('Authorized Account').selectOption({ label: 'Weather main' });
  await reuse.getByRole('button', { name: 'Reuse' }).click();
  await expect(row).toContainText('Weather main');
  await expect(dialog).toBeHidden();

  // Revoke: shown as revoked, and Authorize is offered again.
  await row.getByRole('button', { name: 'Details of Weather' }).click();
  await row.getByRole('region', { name: 'Weather details' }).getByRole('button', { name: 'Revoke Weather' }).click();
  // The confirmation names the connection, its environment, what uses it and what happens at the service.
  const message = await confirmDialog(page, 'Revoke Weather');
  expect(message).toMatch(/Environments\s+All environments/);
  expect(message).toContain('Site Weather');
  expect(message).toContain('The authorization is revoked at');
  await expect(page.getByRole('status', { name: 'Notifications' })).toContainText('Weather revoked.');
  await expect(row).toContainText('Revoked');
  await expect(row.getByRole('button', { name: 'Authorize Weather' })).toBeVisible();
});

test('edit-mode tab: a developer sees details and references, but may not switch or revoke an admin connection', async ({ page }) => {
  await signedIn(page, USERS.developer);
  const tab = await openConnectionsTab(page, 'sales_hub', 'deal_intake');
  const row = entry(tab, 'Sales CRM');
  await row.getByRole('button', { name: 'Details of Sales CRM' }).click();
  const details = row.getByRole('region', { name: 'Sales CRM details' });
  const perms = details.getByRole('list', { name: 'Permissions' });
  await expect(perms).toContainText('crm.deals.read');
  await expect(perms).toContainText('crm.contacts.read');
  const refs = details.getByRole('list', { name: 'References' });
  for (const name of ['Deal Intake', 'Load Deals', 'Forecast', 'Deal Approval', 'Nightly Refresh']) {
    await expect(refs.getByRole('link', { name })).toBeVisible();
  }
  await expect(details.getByRole('button', { name: 'Switch Sales CRM' })).toHaveCount(0);
  await expect(details.getByRole('button', { name: 'Revoke Sales CRM' })).toHaveCount(0);
  // A reference opens that component in the builder.
  await refs.getByRole('link', { name: 'Load Deals' }).click();
  await expect(page).toHaveURL(/\/app\/sales_hub\/edit\?component=load_deals$/);
  await expect(page.getByRole('navigation', { name: 'Components' }).getByRole('link', { name: /Load Deals/ }))
    .toHaveAttribute('aria-current', 'page');
  // A workflow opens in the script editor.
  await expect(page.getByRole('region', { name: 'Script editor' }).getByLabel('Script of Load Deals'))
    .toHaveValue(/^Open deals: GET sales_crm /);
});

test('a form with an unauthorized admin connection: users are told to contact the admin, the admin is prompted, and it loads without a reload', async ({ page }) => {
  // "Authorization required" is an expected answer: never a failed request in the console.
  const failed: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') failed.push(m.text()); });
  page.on('response', (r) => { if (r.url().includes('/api/run_component') && r.status() !== 200) failed.push(`${r.status()} ${r.url()}`); });
  await signedIn(page, USERS.admin);
  await ensureRevoked(await openSlider(page, 'sales_hub'), 'Sales CRM');

  // A plain user cannot use the form until an admin authorizes its connection.
  const { ctx, p: userPage } = await signedInPage(page, USERS.user);
  await userPage.goto('/app/sales_hub?component=deal_intake');
  await hydrated(userPage);
  const blocked = userPage.getByRole('alert', { name: 'Authorization required' });
  await expect(blocked).toContainText('Sales CRM is not authorized yet. Contact your admin');
  await expect(blocked.getByRole('button', { name: 'Authorize now' })).toHaveCount(0);
  await expect(userPage.getByRole('form', { name: 'Deal Intake' })).toHaveCount(0);
  await expect(userPage.getByRole('dialog', { name: 'Authorize Sales CRM' })).toHaveCount(0);
  // The integration report's system connection: "contact your admin or super admin".
  await userPage.goto('/app/sales_hub?component=crm_deals');
  await hydrated(userPage);
  await expect(userPage.getByRole('alert', { name: 'Authorization required' })).toContainText('admin or super admin');

  // The admin opening the form gets the prompt at once, authorizes, and the form loads in place.
  await page.goto('/app/sales_hub?component=deal_intake');
  await hydrated(page);
  await page.evaluate(() => ((window as any).__noReload = true));
  const dialog = page.getByRole('dialog', { name: 'Authorize Sales CRM' });
  await expect(dialog).toBeVisible();
  await linkNewIfOffered(page, dialog);
  await dialog.getByLabel('Name of the Authorization Account').fill('Alice for deals');
  const { popup } = await authorizeWithPopup(page, 'Authorize Sales CRM');
  await consentInPopup(popup, true);
  const form = page.getByRole('form', { name: 'Deal Intake' });
  await expect(form.getByRole('table', { name: 'Open deals' })).toContainText('D-0001');
  await expect(dialog).toHaveCount(0);
  expect(await page.evaluate(() => (window as any).__noReload)).toBe(true);

  // Now the user can use it too.
  await userPage.goto('/app/sales_hub?component=deal_intake');
  await hydrated(userPage);
  await expect(userPage.getByRole('form', { name: 'Deal Intake' }).getByRole('table', { name: 'Open deals' }))
    .toContainText('D-0005');
  await ctx.close();

  // Revoked from the panel: the dependent form prompts again, reached through its reference.
  const slider = await openSlider(page, 'sales_hub');
  const row = entry(slider, 'Sales CRM');
  await row.getByRole('button', { name: 'Details of Sales CRM' }).click();
  await row.getByRole('region', { name: 'Sales CRM details' }).getByRole('button', { name: 'Revoke Sales CRM' }).click();
  await confirmDialog(page, 'Revoke Sales CRM');
  await expect(row).toContainText('Revoked');
  await expect(row.getByRole('button', { name: 'Authorize Sales CRM' })).toBeVisible();
  await row.getByRole('button', { name: 'Details of Sales CRM' }).click();
  await row.getByRole('region', { name: 'Sales CRM details' }).getByRole('link', { name: 'Deal Intake' }).click();
  await expect(page).toHaveURL(/component=deal_intake$/);
  await expect(page.getByRole('dialog', { name: 'Authorize Sales CRM' })).toBeVisible();
  await page.getByRole('dialog', { name: 'Authorize Sales CRM' }).getByRole('button', { name: 'Close' }).click();
  await expect(page.getByRole('alert', { name: 'Authorization required' })).toBeVisible();
  await expect(page.getByRole('form', { name: 'Deal Intake' })).toHaveCount(0);
  expect(failed).toEqual([]);
});

test('a page panel over the user\'s own connection: the user is prompted, authorizes, and the panel loads', async ({ page }) => {
  await signedIn(page, USERS.user);
  const slider = await openSlider(page, 'sales_hub');
  await ensureRevoked(slider, 'My CRM');
  await slider.getByRole('button', { name: 'Close connections' }).click();

  await page.getByRole('navigation', { name: 'Components' }).getByRole('link', { name: 'Pipeline' }).click();
  const dialog = page.getByRole('dialog', { name: 'Authorize My CRM' });
  await expect(dialog).toBeVisible();
  await linkNewIfOffered(page, dialog);
  await dialog.getByLabel('Name of the Authorization Account').fill('Uma pipeline');
  const { popup } = await authorizeWithPopup(page, 'Authorize My CRM');
  await consentInPopup(popup, true, 'bob', 'bob-password');
  await expect(page.getByRole('article', { name: 'Pipeline' }).getByRole('table', { name: 'My deals' })).toContainText('D-0001');

  // Leave the shared database as we found it.
  await ensureRevoked(await openSlider(page, 'sales_hub'), 'My CRM');
});
