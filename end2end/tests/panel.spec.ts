import { test, expect } from '@playwright/test';
import { USERS, hydrated, consentInPopup, openConnectionsSlider, authorizeWithPopup, expectConnected, ensureRevoked, signedIn } from './helpers';

test('a user authorizes their own connection from the live-mode slider, with the countdown', async ({ page }) => {
  await signedIn(page, USERS.user);
  const slider = await openConnectionsSlider(page);
  const row = slider.getByRole('listitem', { name: 'My CRM' });
  // Never authorized, or revoked here (the tests share one database; this one also runs at
  // a phone's width after the desktop run).
  await ensureRevoked(slider, 'My CRM');
  await expect(row).toContainText(/Not connected|Revoked/);
  await row.getByRole('button', { name: 'Authorize My CRM' }).click();

  const asked = page.getByRole('dialog', { name: 'Authorize My CRM' });
  await asked.getByLabel('Name of the Authorization Account').fill('Uma at CRM');
  // A plain user is not asked about environments (builders are).
  await expect(asked.getByRole('group', { name: 'Environments' })).toBeHidden();
  await expect(asked.getByLabel('Production')).toBeHidden();
  const { dialog, popup } = await authorizeWithPopup(page, 'Authorize My CRM');
  await expect(dialog.getByRole('timer', { name: 'Time left to authorize' })).toBeVisible();
  await consentInPopup(popup, true, 'bob', 'bob-password');
  await expectConnected(page, dialog, 'Uma at CRM');
  await expect(row).toContainText('Connected');
  await expect(row).toContainText('Uma at CRM');

  // The account name is editable in place: the field takes the focus, bad input is refused as
  // it is typed (Save waits), Esc gives up and gives the focus back, Save confirms.
  const pencil = row.getByRole('button', { name: 'Edit the account name of My CRM' });
  await pencil.click();
  const field = row.getByLabel('Authorized account name');
  await expect(field).toBeFocused();
  await field.fill('Uma <b>x</b>');
  await expect(row.getByRole('alert')).toContainText('not allowed');
  await expect(field).toHaveAttribute('aria-invalid', 'true');
  await expect(row.getByRole('button', { name: 'Save' })).toBeDisabled();
  await page.keyboard.press('Escape');
  await expect(field).toBeHidden();
  await expect(pencil).toBeFocused();
  await expect(slider).toBeVisible();
  await expect(row).toContainText('Uma at CRM');
  await pencil.click();
  await expect(field).toHaveValue('Uma at CRM');
  await field.fill('Uma main');
  await row.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByRole('status', { name: 'Notifications' })).toContainText('Account renamed to Uma main.');
  await expect(row).toContainText('Uma main');
  // The card does not scroll sideways while renaming.
  await row.getByRole('button', { name: 'Edit the account name of My CRM' }).click();
  expect(await row.evaluate((el) => el.scrollWidth <= el.clientWidth)).toBeTruthy();
  // Nor are its status pills clipped: each lies inside the card.
  const card = (await row.boundingBox())!;
  for (const pill of await row.locator('.status').all()) {
    const b = (await pill.boundingBox())!;
    expect(b.x >= card.x - 0.5 && b.x + b.width <= card.x + card.width + 0.5, 'status pill inside the card').toBeTruthy();
  }
  // Cancel gives up what was typed and gives the focus back.
  await row.getByLabel('Authorized account name').fill('Not kept');
  await row.getByRole('button', { name: 'Cancel' }).click();
  await expect(row.getByLabel('Authorized account name')).toBeHidden();
  await expect(row.getByRole('button', { name: 'Edit the account name of My CRM' })).toBeFocused();
  await expect(row).toContainText('Uma main');
  await expect(row).not.toContainText('Not kept');

  // It is Uma's own authorization: the admin still sees My CRM as not connected for them.
  const admin = await page.context().browser()!.newContext({ baseURL: process.env.BASE_URL ?? 'http://127.0.0.1:3000' });
  const adminPage = await admin.newPage();
  await signedIn(adminPage, USERS.admin);
  const adminSlider = await openConnectionsSlider(adminPage);
  await expect(adminSlider.getByRole('listitem', { name: 'My CRM' })).toContainText('Not connected');
  await admin.close();
});

test('slider cards lead with the connection, then a visible type label and the service; a skeleton while loading; the header stays', async ({ page }) => {
  await signedIn(page, USERS.admin);
  await page.goto('/app/sales_hub');
  await hydrated(page);
  // Hold the list back: the slider shows a skeleton, then the cards.
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  await page.route('**/api/app_connections*', async (route) => {
    await gate;
    await route.continue();
  });
  await page.getByRole('button', { name: 'Settings' }).click();
  await page.getByRole('menuitem', { name: 'Connections' }).click();
  const slider = page.getByRole('dialog', { name: 'Connections' });
  await expect(slider.locator('[aria-busy="true"]')).toContainText('Loading connections…');
  release();
  const card = slider.getByRole('listitem', { name: 'Sales CRM' });
  await expect(card).toBeVisible();
  await expect(slider.locator('[aria-busy="true"]')).toHaveCount(0);
  await page.unroute('**/api/app_connections*');

  // The connection's own name first and largest; then the type in words and the service.
  const name = card.locator('.name');
  await expect(name).toHaveText('Sales CRM');
  const meta = card.locator('.meta');
  await expect(meta.locator('.type-text')).toBeVisible();
  await expect(meta).toHaveText(/^Admin · Sandbox CRM$/);
  const nameBox = (await name.boundingBox())!;
  const metaBox = (await meta.boundingBox())!;
  expect(nameBox.y).toBeLessThan(metaBox.y);
  const size = (l: typeof name) => l.evaluate((el) => parseFloat(getComputedStyle(el).fontSize));
  expect(await size(name)).toBeGreaterThan(await size(meta));
  await expect(card.getByRole('img', { name: 'Admin connection' })).toBeVisible();

  // Scrolled to its end, the slider keeps its title and ✕ in view.
  await slider.evaluate((el) => el.scrollTo(0, el.scrollHeight));
  const close = slider.getByRole('button', { name: 'Close connections' });
  await expect(close).toBeInViewport();
  await expect(slider.getByRole('heading', { name: 'Connections' })).toBeInViewport();
});
