import { test, expect, Page, Locator } from '@playwright/test';
import { USERS, hydrated, signedIn } from './helpers';

/** Presses Tab until `target` has the focus (at most `max` presses). Keyboard only. */
async function tabTo(page: Page, target: Locator, max = 60) {
  for (let i = 0; i < max; i++) {
    if (await target.evaluate((el) => el === document.activeElement).catch(() => false)) return;
    await page.keyboard.press('Tab');
  }
  await expect(target).toBeFocused();
}

test('keyboard only: open the live slider, authorize a connection, close everything', async ({ page }) => {
  await signedIn(page, USERS.admin);
  await page.goto('/app/field_service');
  await hydrated(page);

  await tabTo(page, page.getByRole('button', { name: 'Settings' }));
  await page.keyboard.press('Enter');
  await tabTo(page, page.getByRole('menuitem', { name: 'Connections' }));
  await page.keyboard.press('Enter');
  const slider = page.getByRole('dialog', { name: 'Connections' });
  await expect(slider).toBeVisible();
  await expect(slider.locator(':focus')).toHaveCount(1);
  const row = slider.getByRole('listitem', { name: 'Weather', exact: true });
  await expect(row.getByRole('button', { name: 'Details of Weather' })).toBeVisible();

  // The tests share one database: revoke first if an earlier test left it connected.
  if (!(await row.getByRole('button', { name: 'Authorize Weather' }).isVisible())) {
    await tabTo(page, row.getByRole('button', { name: 'Details of Weather' }));
    await page.keyboard.press('Enter');
    await tabTo(page, row.getByRole('button', { name: 'Revoke Weather' }));
    await page.keyboard.press('Enter');
    const confirm = page.getByRole('dialog', { name: 'Revoke Weather' });
    await expect(confirm.getByRole('button', { name: 'Cancel', exact: true })).toBeFocused();
    await tabTo(page, confirm.getByRole('button', { name: 'Revoke', exact: true }));
    await page.keyboard.press('Enter');
    await expect(row.getByRole('button', { name: 'Authorize Weather' })).toBeVisible();
  }

  await tabTo(page, row.getByRole('button', { name: 'Authorize Weather' }));
  await page.keyboard.press('Enter');
  const dialog = page.getByRole('dialog', { name: 'Authorize Weather' });
  await expect(dialog).toBeVisible();
  await expect(dialog.locator(':focus')).toHaveCount(1);
  await page.waitForLoadState('networkidle');
  const linkNew = dialog.getByRole('button', { name: 'Link New Account' });
  if (await linkNew.isVisible()) {
    await tabTo(page, linkNew);
    await page.keyboard.press('Enter');
  }
  await tabTo(page, dialog.getByLabel('Name of the Authorization Account'));
  await page.keyboard.type('Typed by keyboard');
  await tabTo(page, dialog.getByLabel('API key'));
  await page.keyboard.type('sandbox-weather-key');
  await page.keyboard.press('Enter');
  await expect(page.getByRole('status', { name: 'Notifications' })).toContainText('Connected as Typed by keyboard.');
  await expect(dialog).toBeHidden();
  await expect(row).toContainText('Typed by keyboard');

  await page.keyboard.press('Escape');
  await expect(slider).toBeHidden();
});
