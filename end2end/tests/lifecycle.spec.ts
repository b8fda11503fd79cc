import { test, expect, Page } from '@playwright/test';
import { USERS, hydrated, consentInPopup, authorizeWithPopup, openConnectionsSlider, expectConnected, signedIn, expectStacked } from './helpers';

/** Creates an admin connection to the sandbox CRM through the page's own session; returns its link name. */
async function createConnection(page: Page, name: string): Promise<string> {
  const connectors = await (await page.request.post('/api/list_connectors')).json();
  const crm = connectors.find((c: { link_name: string }) => c.link_name === 'sandbox_crm');
  const res = await page.request.post('/api/create_connection', {
    form: {
      'input[connector_id]': String(crm.id),
      'input[display_name]': name,
      'input[same_for_all_envs]': 'true',
      'input[conn_type]': 'admin',
    },
  });
  expect(res.ok()).toBeTruthy();
  return (await res.json()).link_name;
}

test('builder edits, disables, enables and deletes a connection; delete is refused while it is used', async ({ page }) => {
  await signedIn(page, USERS.developer);
  const link = await createConnection(page, `Spare CRM ${Date.now() % 100000}`);
  await page.goto(`/microservices/connections/${link}`);
  await hydrated(page);

  // Edit: a new display name; the link name stays.
  await page.getByRole('button', { name: 'Edit', exact: true }).click();
  const form = page.getByRole('form', { name: 'Edit connection' });
  await expect(form.getByLabel('Connection display name')).toBeFocused();
  await form.getByLabel('Connection display name').fill('Renamed CRM');
  await form.getByRole('checkbox', { name: /crm\.deals\.write/ }).check();
  await expect(form.getByRole('note')).toContainText('Needs reauthorization');
  await form.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByRole('heading', { name: 'Renamed CRM', level: 1 })).toBeVisible();
  await expect(page.getByText(link, { exact: true })).toBeVisible();
  await expect(page.getByRole('region', { name: 'Connection Details' })).toContainText('crm.deals.write');

  // Disable: said on the page and listed as Disabled; Enable restores it.
  await page.getByRole('button', { name: 'Disable' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'disabled by Dev Developer' })).toBeVisible();
  await page.goto('/microservices?status=disabled');
  await hydrated(page);
  const table = page.getByRole('table', { name: 'Connections' });
  await expect(table.getByRole('link', { name: 'Renamed CRM', exact: true })).toBeVisible();
  await expect(table).toContainText('Disabled');
  await page.goto(`/microservices/connections/${link}`);
  await hydrated(page);
  await page.getByRole('button', { name: 'Enable' }).click();
  await expect(page.getByRole('button', { name: 'Disable' })).toBeVisible();
  await expect(page.getByText('disabled by Dev Developer')).toHaveCount(0);

  // Delete is refused for a connection in use, with links to what uses it; Esc closes.
  await page.goto('/microservices/connections/sales_crm');
  await hydrated(page);
  await page.getByRole('button', { name: 'Delete', exact: true }).click();
  let dialog = page.getByRole('dialog', { name: 'Delete Sales CRM' });
  await expect(dialog.getByRole('alert')).toContainText('cannot be deleted while these use it');
  await expect(dialog.getByRole('link', { name: 'CRM Deals' })).toBeVisible();
  await expect(dialog.getByRole('button', { name: 'Delete connection' })).toHaveCount(0);
  await expect(dialog.getByRole('button', { name: 'Cancel', exact: true })).toBeFocused();
  await page.keyboard.press('Escape');
  await expect(dialog).toHaveCount(0);

  // An unused connection: the dialog names it and says what happens; then it is gone.
  await page.goto(`/microservices/connections/${link}`);
  await hydrated(page);
  await page.getByRole('button', { name: 'Delete', exact: true }).click();
  dialog = page.getByRole('dialog', { name: 'Delete Renamed CRM' });
  await expect(dialog).toContainText('revoked at Sandbox CRM');
  await dialog.getByRole('button', { name: 'Delete connection' }).click();
  await expect(page).toHaveURL(/\/microservices/);
  await page.goto(`/microservices/connections/${link}`);
  await expect(page.getByRole('alert')).toContainText(`no connection '${link}'`);
});

test("an admin sees each user's authorization of a logged-in-user connection and revokes one", async ({ page }) => {
  // Uma authorizes My CRM with her own account (unless an earlier test left it connected).
  await signedIn(page, USERS.user);
  const slider = await openConnectionsSlider(page);
  const row = slider.getByRole('listitem', { name: 'My CRM' });
  await expect(row).toContainText(/Not connected|Revoked|Connected/);
  if (await row.getByRole('button', { name: 'Authorize My CRM' }).isVisible()) {
    await row.getByRole('button', { name: 'Authorize My CRM' }).click();
    await page.getByRole('dialog', { name: 'Authorize My CRM' }).getByLabel('Name of the Authorization Account').fill('Uma for review');
    const { dialog, popup } = await authorizeWithPopup(page, 'Authorize My CRM');
    await consentInPopup(popup, true, 'bob', 'bob-password');
    await expectConnected(page, dialog, 'Uma for review');
  }
  // She sees only her own row.
  await page.goto('/microservices/connections/my_crm');
  await hydrated(page);
  const own = page.getByRole('table', { name: 'Your authorizations' });
  await expect(own.getByRole('row', { name: /Uma User/ }).first()).toBeVisible();
  await expect(own.getByRole('row', { name: /Ada Admin|Dev Developer|Sam Super/ })).toHaveCount(0);

  // The admin sees her row among everyone's and revokes it.
  await page.context().clearCookies();
  await signedIn(page, USERS.admin);
  await page.goto('/microservices/connections/my_crm');
  await hydrated(page);
  const all = page.getByRole('table', { name: "Users' authorizations" });
  const uma = all.getByRole('row', { name: /Uma User/ });
  await expect(uma.first()).toBeVisible();
  // On a phone, everyone's authorizations are a stack of cards.
  await page.setViewportSize({ width: 390, height: 844 });
  await expectStacked(page, all, 'Environment');
  await page.setViewportSize({ width: 1280, height: 800 });
  await uma.first().getByRole('button', { name: /^Revoke Uma User's authorization/ }).click();
  await expect(uma).toHaveCount(0);
});

test('a builder edits a custom connector: the secret is write-only, a new one replaces it; unused, it is deleted', async ({ page }) => {
  const sandbox = process.env.SANDBOX_URL ?? 'http://127.0.0.1:4010';
  await signedIn(page, USERS.developer);
  const res = await page.request.post('/api/create_custom_connector', {
    form: {
      'input[name]': 'Rotating CRM',
      'input[auth_type]': 'oauth2',
      'input[client_id]': 'crm-connector',
      'input[client_secret]': 'crm-connector-secret',
      'input[authorize_url]': `${sandbox}/auth`,
      'input[token_url]': `${sandbox}/token`,
      'input[scopes]': 'crm.deals.read',
      'input[api_base]': sandbox,
    },
  });
  expect(res.ok()).toBeTruthy();
  const id = (await res.json()).id;
  await page.goto(`/microservices/connectors/${id}/edit`);
  await hydrated(page);
  await expect(page.getByRole('heading', { name: 'Edit Rotating CRM' })).toBeVisible();
  await expect(page.getByLabel('Link Name')).toHaveValue('rotating_crm');
  await page.getByLabel('Description').fill('Rotated monthly');
  await page.getByRole('button', { name: 'Save & Continue' }).click();
  const security = page.getByRole('form', { name: 'Security' });
  await expect(security.getByLabel('Access Token URL')).toHaveValue(`${sandbox}/token`);
  await expect(security.getByLabel('Client Secret')).toHaveValue('');
  await expect(security.getByText('Set — leave blank to keep it')).toBeVisible();
  await security.getByLabel('Client Secret').fill('rotated-secret');
  await security.getByRole('button', { name: 'Save', exact: true }).click();
  await expect(security.getByRole('status')).toHaveText('Saved.');
  expect(await page.content()).not.toContain('rotated-secret');

  await page.getByLabel('Delete Rotating CRM for good').check();
  await page.getByRole('button', { name: 'Delete connector' }).click();
  await expect(page).toHaveURL(/section=custom/);
});
