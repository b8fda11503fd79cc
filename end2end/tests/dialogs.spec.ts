import { test, expect, Page, Locator } from '@playwright/test';
import { USERS, hydrated, ensureSalesCrmAuthorized, confirmDialog, signedIn } from './helpers';

/** Presses Tab `n` times and checks after each press that focus is still inside `dialog`. */
async function tabStaysIn(page: Page, dialog: Locator, n: number, shift = false) {
  for (let i = 0; i < n; i++) {
    await page.keyboard.press(shift ? 'Shift+Tab' : 'Tab');
    await expect(dialog.locator(':focus')).toHaveCount(1);
  }
}

test('a dialog takes focus, keeps it, closes on Esc and gives focus back to what opened it', async ({ page }) => {
  await signedIn(page, USERS.admin);
  await page.goto('/microservices/connections/sales_crm');
  await hydrated(page);
  const opener = page.getByRole('button', { name: 'Delete', exact: true });
  await opener.click();
  const dialog = page.getByRole('dialog', { name: 'Delete Sales CRM' });
  await expect(dialog).toBeVisible();
  await expect(dialog).toHaveAttribute('aria-modal', 'true');
  // Focus starts on Cancel (never on the dangerous button) and stays inside both ways.
  await expect(dialog.getByRole('button', { name: 'Cancel', exact: true })).toBeFocused();
  await tabStaysIn(page, dialog, 12);
  await tabStaysIn(page, dialog, 12, true);
  await page.keyboard.press('Escape');
  await expect(dialog).toBeHidden();
  await expect(opener).toBeFocused();
  // The ✕ closes it too.
  await opener.click();
  await dialog.getByRole('button', { name: 'Cancel and close' }).click();
  await expect(dialog).toBeHidden();
});

test('the builder panel: below the top bar, closed by ✕, Esc or a click outside, focus kept inside', async ({ page }) => {
  await signedIn(page, USERS.admin);
  await page.goto('/app/sales_hub/edit?component=deal_intake');
  await hydrated(page);
  const integrations = page.getByRole('button', { name: 'Integrations' });
  const panel = page.getByRole('dialog', { name: 'Integrations' });
  await integrations.click();
  await expect(panel.getByRole('tabpanel', { name: 'Connections' })).toBeVisible();
  // It starts below the top bar, whose buttons stay visible and usable.
  const bar = await page.locator('header.builder-header').boundingBox();
  const box = await panel.boundingBox();
  expect(box!.y).toBeGreaterThanOrEqual(bar!.y + bar!.height - 1);
  await expect(panel.locator(':focus')).toHaveCount(1);
  await tabStaysIn(page, panel, 10);

  await page.keyboard.press('Escape');
  await expect(panel).toBeHidden();
  await expect(integrations).toBeFocused();

  // A click outside closes it (on a phone the panel takes the whole width: there is no outside).
  if (page.viewportSize()!.width > 640) {
    await integrations.click();
    await expect(panel).toBeVisible();
    await page.mouse.click(40, 600); // the component list, outside the panel
    await expect(panel).toBeHidden();
  }

  await integrations.click();
  await panel.getByRole('button', { name: 'Close integrations' }).click();
  await expect(panel).toBeHidden();
});

test('a confirmation opened from the slider closes alone on Esc; Revoke is never focused first', async ({ page }) => {
  await signedIn(page, USERS.admin);
  const row = await ensureSalesCrmAuthorized(page);
  const slider = page.getByRole('dialog', { name: 'Connections' });
  await row.getByRole('button', { name: 'Details of Sales CRM' }).click();
  const revoke = row.getByRole('region', { name: 'Sales CRM details' }).getByRole('button', { name: 'Revoke Sales CRM' });
  await revoke.click();
  const confirm = page.getByRole('dialog', { name: 'Revoke Sales CRM' });
  await expect(confirm).toBeVisible();
  // It names what is affected: the environments (one row, shared or not), what uses it.
  await expect(confirm.getByRole('definition')).toHaveCount(3);
  await expect(confirm).toContainText('Environments');
  await expect(confirm.getByRole('list', { name: 'Will ask for authorization again' })).toContainText('Deal Intake');
  await expect(confirm.getByRole('button', { name: 'Cancel', exact: true })).toBeFocused();
  await tabStaysIn(page, confirm, 4);
  await page.keyboard.press('Escape');
  await expect(confirm).toBeHidden();
  await expect(slider).toBeVisible();
  await expect(revoke).toBeFocused();
  await expect(row.getByText('Connected', { exact: true })).toBeVisible();
  // Esc again closes the slider.
  await page.keyboard.press('Escape');
  await expect(slider).toBeHidden();
});

test('revoking from the slider lists the datasources that stop syncing, over a backdrop, and a revoke that fails says why', async ({ page }) => {
  await signedIn(page, USERS.admin);
  const row = await ensureSalesCrmAuthorized(page);
  await row.getByRole('button', { name: 'Details of Sales CRM' }).click();
  // In live mode, references with a live view are links; a function or a schedule is named only.
  const details = row.getByRole('region', { name: 'Sales CRM details' });
  const references = details.getByRole('list', { name: 'References' });
  await expect(references.getByRole('link', { name: 'Deal Intake' })).toBeVisible();
  for (const name of ['Forecast', 'Nightly Refresh']) {
    await expect(references.getByText(name, { exact: true })).toBeVisible();
    await expect(references.getByRole('link', { name })).toHaveCount(0);
  }
  await details.getByRole('button', { name: 'Revoke Sales CRM' }).click();
  const confirm = page.getByRole('dialog', { name: 'Revoke Sales CRM' });
  await expect(confirm).toBeVisible();
  const synced = confirm.getByRole('list', { name: 'Datasources that cannot sync' });
  await expect(synced).toContainText('CRM Deals');
  await expect(synced).toContainText('CRM Contacts');
  await expect(confirm).toContainText('Syncing the datasources listed fails until then.');
  // A backdrop covers the page; clicking it does not close the confirmation (nothing is lost).
  const backdrop = page.locator('.backdrop:not(.slide-backdrop)');
  await expect(backdrop).toBeVisible();
  await page.mouse.click(5, 700);
  await expect(confirm).toBeVisible();

  // Meanwhile the authorization is revoked elsewhere (another tab, the connection's page).
  const other = await page.context().newPage();
  await other.goto('/microservices/connections/sales_crm');
  await hydrated(other);
  // Sales CRM uses one authorization for every environment: one revoke covers them all.
  const revokeThere = other.getByRole('button', { name: /^Revoke (Development|Stage|Production)$/ });
  await revokeThere.first().click();
  await confirmDialog(other, 'Revoke Sales CRM');
  await expect(other.getByRole('status', { name: 'Notifications' })).toContainText('Sales CRM revoked.');
  await expect(revokeThere).toHaveCount(0);
  await other.close();

  // Confirming here now fails: a toast says what could not be done and why.
  await confirm.getByRole('button', { name: 'Revoke', exact: true }).click();
  await expect(confirm).toBeHidden();
  await expect(page.getByRole('status', { name: 'Notifications' }))
    .toContainText('Could not revoke Sales CRM: This connection has no authorization to revoke here.');
  // And the list is read again: it shows the revoke made elsewhere.
  await expect(row).toContainText('Revoked');
  await expect(row.getByRole('button', { name: 'Authorize Sales CRM' })).toBeVisible();
});
