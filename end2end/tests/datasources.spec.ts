import { test, expect, Page } from '@playwright/test';
import { USERS, ensureSalesCrmAuthorized, salesCrmInSlider, openConnectionsSlider, datasourcesOf, signedIn } from './helpers';

const SANDBOX = process.env.SANDBOX_URL ?? 'http://127.0.0.1:4010';

async function failSandbox(page: Page, query: string) {
  const res = await page.request.post(`${SANDBOX}/_sandbox/fail?${query}`);
  expect(res.status()).toBe(200);
}

test('configure a datasource, initiate a sync, watch Ongoing → Completed and the new values in the form', async ({ page }) => {
  await signedIn(page, USERS.admin);
  const row = await ensureSalesCrmAuthorized(page);

  // Unconfigured, the section is unfolded on its own.
  await expect(row.getByRole('button', { name: /^Associated Datasources/ })).toHaveAttribute('aria-expanded', 'true');
  const section = await datasourcesOf(row);
  const deals = section.getByRole('article', { name: 'Datasource CRM Deals' });
  await expect(deals).toContainText('Module: Deals');
  await expect(deals).toContainText('Datasource Configuration');
  await expect(deals).toContainText('Configure the datasource before syncing.');

  // Configure (first time): a choice is required.
  await deals.getByRole('button', { name: 'Configure CRM Deals', exact: true }).click();
  await deals.getByRole('button', { name: 'Save configuration' }).click();
  await expect(deals.getByRole('alert')).toContainText('Pipeline stage is required.');
  await deals.getByLabel('Pipeline stage').selectOption('All');
  await deals.getByRole('button', { name: 'Save configuration' }).click();
  await expect(deals.getByRole('button', { name: 'Reconfigure CRM Deals' })).toBeVisible();
  await expect(deals).toContainText('stage: All');

  // The first page answers slowly, so Ongoing is visible before Completed.
  await failSandbox(page, 'mode=slow&times=1&delay_ms=3000');
  await deals.getByRole('button', { name: 'Initiate sync of CRM Deals' }).click();
  const badge = deals.getByRole('status', { name: 'Sync status of CRM Deals' });
  await expect(badge).toContainText('Ongoing');
  await expect(badge).toContainText('Completed', { timeout: 20_000 });
  await expect(badge).toContainText('Last sync completed:');
  await expect(badge).toContainText('250 records');
  await expect(badge).toContainText('API calls');

  // A second press the same day is refused: the button says when the next one is allowed.
  const again = deals.getByRole('button', { name: 'Initiate sync of CRM Deals' });
  await expect(again).toBeDisabled();
  await expect(again).toContainText('Next sync allowed after');

  // The integration field in the form's records shows the service's current deal names.
  await deals.getByRole('link', { name: 'Deal Intake › deal' }).click();
  const records = page.getByRole('table', { name: 'Deal Intake records' });
  await expect(records).toContainText('Deal 1 - Globex');
  await expect(records).not.toContainText('(old name)');

  // Once nothing needs configuring, the datasources are folded: the card stays short.
  const again2 = await salesCrmInSlider(page);
  const toggle = again2.getByRole('button', { name: /^Associated Datasources \(\d+\)$/ });
  await expect(toggle).toHaveAttribute('aria-expanded', 'false');
  await expect(again2.getByRole('article', { name: 'Datasource CRM Deals' })).toBeHidden();
  await toggle.click();
  await expect(again2.getByRole('article', { name: 'Datasource CRM Deals' })).toBeVisible();
});

test('a failing service gives Failed with a log entry in Operations, and the sync can be initiated again', async ({ page }) => {
  await signedIn(page, USERS.superadmin);
  const row = await ensureSalesCrmAuthorized(page);
  const contacts = (await datasourcesOf(row)).getByRole('article', { name: 'Datasource CRM Contacts' });
  await expect(contacts).toContainText('Module: Contacts');
  await expect(contacts).not.toContainText('Datasource Configuration');

  await failSandbox(page, 'mode=500&times=1');
  await contacts.getByRole('button', { name: 'Initiate sync of CRM Contacts' }).click();
  const badge = contacts.getByRole('status', { name: 'Sync status of CRM Contacts' });
  await expect(badge).toContainText('Failed', { timeout: 20_000 });
  await expect(badge).toContainText('HTTP 500');
  await expect(contacts.getByRole('button', { name: 'Initiate sync of CRM Contacts' })).toHaveText('Initiate again');

  await contacts.getByRole('link', { name: 'See the log in Operations' }).click();
  await expect(page.getByRole('heading', { name: 'Operations' })).toBeVisible();
  const run = page.getByRole('table', { name: 'Sync runs' }).getByRole('row').filter({ hasText: 'CRM Contacts' }).first();
  await expect(run).toContainText('Failed');
  await expect(run).toContainText('HTTP 500');
  await expect(page.getByRole('table', { name: 'Operations log' })).toContainText('Sync failed');

  // The service recovered: initiating again completes.
  const row2 = await salesCrmInSlider(page);
  const contacts2 = (await datasourcesOf(row2)).getByRole('article', { name: 'Datasource CRM Contacts' });
  await contacts2.getByRole('button', { name: 'Initiate sync of CRM Contacts' }).click();
  await expect(contacts2.getByRole('status', { name: 'Sync status of CRM Contacts' })).toContainText('Completed', { timeout: 20_000 });
  await contacts2.getByRole('link', { name: 'Contact Lookup › contact' }).click();
  await expect(page.getByRole('table', { name: 'Contact Lookup records' })).toContainText('grace.lovelace.1@example.test');
});

test('plain users see no datasources in the slider', async ({ page }) => {
  await signedIn(page, USERS.user);
  const slider = await openConnectionsSlider(page);
  await expect(slider.getByRole('listitem').first()).toBeVisible();
  await expect(slider.getByRole('region', { name: 'Associated Datasources' })).toHaveCount(0);
});
