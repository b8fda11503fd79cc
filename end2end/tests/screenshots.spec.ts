import { test, expect } from '@playwright/test';
import * as path from 'path';
import { USERS, signIn, openConnectionsSlider, openConnectionsTab } from './helpers';

// Refreshes the README's screenshots: SCREENSHOTS=1 (skipped otherwise).
// Playwright runs from end2end/.
const DOCS = path.join(process.cwd(), '..', 'docs');

test.describe('screenshots', () => {
  test.skip(!process.env.SCREENSHOTS, 'set SCREENSHOTS=1 to refresh docs/*.png');

  test('live-mode slider with an entry\'s details', async ({ page }) => {
    await page.setViewportSize({ width: 1280, height: 800 });
    await signIn(page, USERS.admin);
    await expect(page.getByRole('heading', { name: 'Applications' })).toBeVisible();
    const slider = await openConnectionsSlider(page);
    const row = slider.getByRole('listitem', { name: 'Sales CRM', exact: true });
    await row.getByRole('button', { name: 'Details of Sales CRM' }).click();
    await expect(row.getByRole('list', { name: 'References' })).toBeVisible();
    await page.screenshot({ path: path.join(DOCS, 'live-slider.png') });
  });

  test('edit-mode Connections tab', async ({ page }) => {
    await page.setViewportSize({ width: 1280, height: 800 });
    await signIn(page, USERS.developer);
    await expect(page.getByRole('heading', { name: 'Applications' })).toBeVisible();
    const tab = await openConnectionsTab(page, 'sales_hub', 'deal_intake');
    const row = tab.getByRole('listitem', { name: 'My CRM', exact: true });
    await row.getByRole('button', { name: 'Details of My CRM' }).click();
    await expect(row.getByRole('list', { name: 'References' })).toBeVisible();
    await page.screenshot({ path: path.join(DOCS, 'edit-tab.png') });
  });

  test('dark mode and a phone: the slider', async ({ page }) => {
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.setViewportSize({ width: 1280, height: 800 });
    await signIn(page, USERS.admin);
    await expect(page.getByRole('heading', { name: 'Applications' })).toBeVisible();
    await openConnectionsSlider(page);
    await page.waitForLoadState('networkidle');
    await page.screenshot({ path: path.join(DOCS, 'live-slider-dark.png') });
    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize({ width: 390, height: 844 });
    await openConnectionsSlider(page);
    await page.waitForLoadState('networkidle');
    await page.screenshot({ path: path.join(DOCS, 'live-slider-phone.png') });
  });

  test('the script editor', async ({ page }) => {
    await page.setViewportSize({ width: 1280, height: 800 });
    await signIn(page, USERS.developer);
    await expect(page.getByRole('heading', { name: 'Applications' })).toBeVisible();
    await page.goto('/app/sales_hub/edit?component=load_deals');
    await expect(page.getByLabel('Script of Load Deals')).toHaveValue(/Open deals/);
    await page.screenshot({ path: path.join(DOCS, 'script-editor.png') });
  });

  test('Microservices, Operations and the builder: desktop and phone, light and dark', async ({ page }) => {
    const shots: [string, { width: number; height: number }, 'light' | 'dark'][] = [
      ['microservices.png', { width: 1280, height: 800 }, 'light'],
      ['microservices-phone-dark.png', { width: 390, height: 844 }, 'dark'],
    ];
    await signIn(page, USERS.admin);
    await expect(page.getByRole('heading', { name: 'Applications' })).toBeVisible();
    for (const [file, size, scheme] of shots) {
      await page.emulateMedia({ colorScheme: scheme });
      await page.setViewportSize(size);
      await page.goto('/microservices');
      await expect(page.getByRole('table', { name: 'Connections' })).toBeVisible();
      await page.waitForLoadState('networkidle');
      await page.screenshot({ path: path.join(DOCS, file) });
    }
    // Something in the log besides sign-ins (folded away): a connection created.
    const connectors = await (await page.request.post('/api/list_connectors')).json();
    const crm = connectors.find((c: { link_name: string }) => c.link_name === 'sandbox_crm');
    const created = await page.request.post('/api/create_connection', {
      form: { 'input[connector_id]': String(crm.id), 'input[display_name]': 'Support CRM', 'input[same_for_all_envs]': 'true', 'input[conn_type]': 'admin' },
    });
    expect(created.ok()).toBeTruthy();
    for (const [file, size, scheme] of [
      ['operations-dark.png', { width: 1280, height: 800 }, 'dark'],
      ['operations-phone.png', { width: 390, height: 844 }, 'light'],
    ] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      await page.setViewportSize(size);
      await page.goto('/operations');
      await expect(page.getByRole('table', { name: 'Operations log' })).toBeVisible();
      await page.waitForLoadState('networkidle');
      await page.screenshot({ path: path.join(DOCS, file) });
    }
    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto('/app/sales_hub/edit?component=load_deals');
    await expect(page.getByLabel('Script of Load Deals')).toHaveValue(/Open deals/);
    await page.waitForLoadState('networkidle');
    await page.screenshot({ path: path.join(DOCS, 'script-editor-phone.png') });
  });
});
