import { test, expect } from '@playwright/test';
import { USERS, openConnectionsSlider, linkNewIfOffered, hydrated, expectConnected, signedIn } from './helpers';

test('payment gateways are listed apart in the slider; authorized, the payment form shows recent charges', async ({ page }) => {
  await signedIn(page, USERS.admin);
  const slider = await openConnectionsSlider(page, 'field_service');
  const gateways = slider.getByRole('list', { name: 'Payment gateways' });
  const row = gateways.getByRole('listitem', { name: 'Checkout', exact: true });
  await expect(row).toBeVisible();
  await expect(slider.getByRole('list', { name: 'Connections used' }).getByRole('listitem', { name: 'Checkout', exact: true })).toHaveCount(0);
  await expect(row.getByRole('img', { name: 'Admin connection' })).toBeVisible();

  const authorize = row.getByRole('button', { name: 'Authorize Checkout' });
  if (await authorize.isVisible()) {
    const dialog = page.getByRole('dialog', { name: 'Authorize Checkout' });
    await authorize.click();
    await expect(dialog).toBeVisible();
    await linkNewIfOffered(page, dialog);
    await dialog.getByLabel('Name of the Authorization Account').fill('Field payments');
    await dialog.getByLabel('API key').fill('sk_test_sandbox');
    await dialog.getByRole('button', { name: 'Authorize', exact: true }).click();
    await expectConnected(page, dialog, 'Field payments');
  }
  await expect(row).toContainText('Connected');

  // Its references in live mode: the form is a link; the workflow has no live view, so it is
  // named without a link that would lead nowhere.
  await row.getByRole('button', { name: 'Details of Checkout' }).click();
  const refs = row.getByRole('list', { name: 'References' });
  await expect(refs.getByRole('link', { name: 'Service Payment' })).toHaveAttribute('href', '/app/field_service?component=service_payment');
  await expect(refs).toContainText('Recent Charges');
  await expect(refs.getByRole('link', { name: 'Recent Charges' })).toHaveCount(0);

  // The form whose on-load workflow lists charges through the gateway.
  await page.goto('/app/field_service?component=service_payment');
  await hydrated(page);
  const charges = page.getByRole('form', { name: 'Service Payment' }).getByRole('table', { name: 'Recent charges' });
  await expect(charges).toContainText('ch_0001');
  await expect(charges).toContainText('Service visit #1000');
});
