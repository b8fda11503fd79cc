import { test, expect, type Page } from '@playwright/test';
import * as path from 'path';
import { USERS, openConnectionsSlider, openConnectionsTab, signedIn } from './helpers';

// Refreshes the README's screenshots: SCREENSHOTS=1 (skipped otherwise).
// Playwright runs from end2end/.
const DOCS = path.join(process.cwd(), '..', 'docs');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

/** Opens `url` at `size` in the light or dark scheme, waits until `ready` passes and the network is idle, and saves docs/`file`. */
async function shoot(
  page: Page,
  file: string,
  size: { width: number; height: number },
  scheme: 'light' | 'dark',
  url: string,
  ready: () => Promise<void>,
) {
  await page.emulateMedia({ colorScheme: scheme });
  await page.setViewportSize(size);
  await page.goto(url);
  await ready();
  await page.waitForLoadState('networkidle');
  await page.screenshot({ path: path.join(DOCS, file) });
}

test.describe('screenshots', () => {
  test.skip(!process.env.SCREENSHOTS, 'set SCREENSHOTS=1 to refresh docs/*.png');

  test('live-mode slider with an entry\'s details', async ({ page }) => {
    await page.setViewportSize(DESKTOP);
    await signedIn(page, USERS.admin);
    const slider = await openConnectionsSlider(page);
    const row = slider.getByRole('listitem', { name: 'Sales CRM', exact: true });
    await row.getByRole('button', { name: 'Details of Sales CRM' }).click();
    await expect(row.getByRole('list', { name: 'References' })).toBeVisible();
    await page.screenshot({ path: path.join(DOCS, 'live-slider.png') });
  });

  test('edit-mode Connections tab', async ({ page }) => {
    await page.setViewportSize(DESKTOP);
    await signedIn(page, USERS.developer);
    const tab = await openConnectionsTab(page, 'sales_hub', 'deal_intake');
    const row = tab.getByRole('listitem', { name: 'My CRM', exact: true });
    await row.getByRole('button', { name: 'Details of My CRM' }).click();
    await expect(row.getByRole('list', { name: 'References' })).toBeVisible();
    await page.screenshot({ path: path.join(DOCS, 'edit-tab.png') });
  });

  test('dark mode and a phone: the slider', async ({ page }) => {
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.setViewportSize(DESKTOP);
    await signedIn(page, USERS.admin);
    await openConnectionsSlider(page);
    await page.waitForLoadState('networkidle');
    await page.screenshot({ path: path.join(DOCS, 'live-slider-dark.png') });
    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize(PHONE);
    await openConnectionsSlider(page);
    await page.waitForLoadState('networkidle');
    await page.screenshot({ path: path.join(DOCS, 'live-slider-phone.png') });
  });

  test('the script editor', async ({ page }) => {
    await signedIn(page, USERS.developer);
    await shoot(page, 'script-editor.png', DESKTOP, 'light', '/app/sales_hub/edit?component=load_deals', () =>
      expect(page.getByLabel('Script of Load Deals')).toHaveValue(/Open deals/),
    );
  });

  test('Microservices, Operations and the builder: desktop and phone, light and dark', async ({ page }) => {
    await signedIn(page, USERS.admin);
    const microservices = page.getByRole('table', { name: 'Connections' });
    await shoot(page, 'microservices.png', DESKTOP, 'light', '/microservices', () => expect(microservices).toBeVisible());
    await shoot(page, 'microservices-phone-dark.png', PHONE, 'dark', '/microservices', () => expect(microservices).toBeVisible());
    // Something in the log besides sign-ins (folded away): a connection created.
    const connectors = await (await page.request.post('/api/list_connectors')).json();
    const crm = connectors.find((c: { link_name: string }) => c.link_name === 'sandbox_crm');
    const created = await page.request.post('/api/create_connection', {
      form: { 'input[connector_id]': String(crm.id), 'input[display_name]': 'Support CRM', 'input[same_for_all_envs]': 'true', 'input[conn_type]': 'admin' },
    });
    expect(created.ok()).toBeTruthy();
    const log = page.getByRole('table', { name: 'Operations log' });
    await shoot(page, 'operations-dark.png', DESKTOP, 'dark', '/operations', () => expect(log).toBeVisible());
    await shoot(page, 'operations-phone.png', PHONE, 'light', '/operations', () => expect(log).toBeVisible());
    await shoot(page, 'script-editor-phone.png', PHONE, 'light', '/app/sales_hub/edit?component=load_deals', () =>
      expect(page.getByLabel('Script of Load Deals')).toHaveValue(/Open deals/),
    );
  });
});
