import { test, expect } from '@playwright/test';
import { USERS, ensureSalesCrmAuthorized, authorizeWeatherKey, confirmDialog, datasourcesOf, signedIn } from './helpers';

test('the embed example page gets authorized, switched and revoked events from the embedded panel', async ({ page }) => {
  await signedIn(page, USERS.admin);
  await page.goto('/embed-example?app=field_service');
  await expect(page.locator('#snippet')).toContainText('/embed.js" data-app="field_service"');
  const frame = page.frameLocator('iframe[title="Connections"]');
  await expect(frame.locator('body[data-hydrated="true"]')).toHaveCount(1);
  const row = frame.getByRole('listitem', { name: 'Weather', exact: true });
  const details = row.getByRole('button', { name: 'Details of Weather' });
  await expect(details).toBeVisible();
  // The tests share one database: start from "not connected".
  if (!(await row.getByRole('button', { name: 'Authorize Weather' }).isVisible())) {
    await details.click();
    await row.getByRole('button', { name: 'Revoke Weather' }).click();
    await confirmDialog(frame, 'Revoke Weather');
    await expect(row.getByRole('button', { name: 'Authorize Weather' })).toBeVisible();
  }
  const events = page.getByRole('list', { name: 'Events' });

  const authorize = (name: string) =>
    authorizeWeatherKey(page, frame.getByRole('dialog', { name: 'Authorize Weather' }), name, frame);
  await row.getByRole('button', { name: 'Authorize Weather' }).click();
  await authorize('Embedded weather');
  await expect(events).toContainText('connections.authorized field_service weather production');

  await details.click();
  await row.getByRole('button', { name: 'Switch Weather' }).click();
  await authorize('Embedded weather 2');
  await expect(events).toContainText('connections.switched field_service weather production');

  await details.click();
  await row.getByRole('button', { name: 'Revoke Weather' }).click();
  await confirmDialog(frame, 'Revoke Weather');
  await expect(events).toContainText('connections.revoked field_service weather production');
  await expect(row.getByRole('button', { name: 'Authorize Weather' })).toBeVisible();
  // Each event carries an ISO timestamp.
  await expect(events.getByRole('listitem').last()).toHaveText(/ \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
});

test('the embedded panel for one component links its references to live mode in a new tab', async ({ page }) => {
  await signedIn(page, USERS.developer);
  await page.goto('/embed/sales_hub?component=deal_intake');
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
  const panel = page.getByRole('main', { name: 'Connections' });
  const row = panel.getByRole('listitem', { name: 'Sales CRM', exact: true });
  await row.getByRole('button', { name: 'Details of Sales CRM' }).click();
  const link = row.getByRole('list', { name: 'References' }).getByRole('link', { name: 'Deal Intake' });
  await expect(link).toHaveAttribute('href', '/app/sales_hub?component=deal_intake');
  await expect(link).toHaveAttribute('target', '_blank');
  // Only this component's connections are listed.
  await expect(panel.getByRole('listitem', { name: 'CRM System', exact: true })).toHaveCount(0);
});

test('the embed example page gets sync_finished when a datasource sync shown in the panel ends', async ({ page }) => {
  await signedIn(page, USERS.superadmin);
  await ensureSalesCrmAuthorized(page);
  await page.goto('/embed-example?app=sales_hub');
  const frame = page.frameLocator('iframe[title="Connections"]');
  await expect(frame.locator('body[data-hydrated="true"]')).toHaveCount(1);
  const deals = (await datasourcesOf(frame.getByRole('listitem', { name: 'Sales CRM', exact: true }))).getByRole('article', { name: 'Datasource CRM Deals' });
  const configure = deals.getByRole('button', { name: 'Configure CRM Deals', exact: true });
  const initiate = deals.getByRole('button', { name: 'Initiate sync of CRM Deals' });
  await expect(configure.or(initiate)).toBeVisible();
  if (await configure.isVisible()) {
    await configure.click();
    await deals.getByLabel('Pipeline stage').selectOption('All');
    await deals.getByRole('button', { name: 'Save configuration' }).click();
  }
  // The badge may already say Completed (another user's earlier run): wait for this user's run,
  // after which the button says when the next one is allowed.
  const started = deals.getByText(/^(Queued|Ongoing)/).or(initiate.filter({ hasText: 'Next sync allowed' }));
  if (!(await started.isVisible())) await initiate.click();
  await expect(started.or(deals.getByRole('alert'))).toBeVisible();
  await expect(deals.getByRole('alert')).toHaveCount(0);
  await expect(initiate).toContainText('Next sync allowed', { timeout: 20_000 });
  await expect(deals.getByRole('status', { name: 'Sync status of CRM Deals' })).toContainText('Completed');
  await expect(page.getByRole('list', { name: 'Events' })).toContainText('connections.sync_finished sales_hub sales_crm production');
});

test('a builder sets who may embed the panel in edit mode; the embed route allows exactly those sites', async ({ page }) => {
  await signedIn(page, USERS.developer);
  await page.goto('/app/field_service/edit');
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
  await page.getByRole('button', { name: 'Embed the connections panel' }).click();
  await expect(page.getByLabel('Embed snippet')).toContainText('/embed.js" data-app="field_service"');
  const origins = page.getByLabel(/Sites allowed to embed it/);
  await origins.fill('https://intranet.example.com\njavascript:alert(1)');
  await page.getByRole('button', { name: 'Save allowed sites' }).click();
  await expect(page.getByRole('alert')).toBeVisible();
  await origins.fill('https://intranet.example.com');
  await page.getByRole('button', { name: 'Save allowed sites' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'allowed site' })).toContainText('Saved: 1 allowed site(s).');
  const res = await page.request.get('/embed/field_service');
  expect(res.headers()['content-security-policy']).toContain("frame-ancestors 'self' https://intranet.example.com");
  await origins.fill('');
  await page.getByRole('button', { name: 'Save allowed sites' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'allowed site' })).toContainText('Saved: 0 allowed site(s).');
});
