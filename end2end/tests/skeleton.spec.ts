import { test, expect } from '@playwright/test';
import { PASSWORD, USERS, hydrated, signIn, openConnectionsTab, signedIn } from './helpers';

const builders = [
  ['super admin', USERS.superadmin],
  ['admin', USERS.admin],
  ['developer', USERS.developer],
] as const;

test('a wrong password is refused with a clear message', async ({ page }) => {
  await signIn(page, USERS.admin, 'not-the-password');
  await expect(page.getByRole('alert')).toHaveText('Wrong email or password.');
  await expect(page).toHaveURL(/\/login/);
});

// The sign-in form works before the client has hydrated and without JavaScript at all, and a
// refused sign-in says why: the server sends the form back with the error in the URL, which the
// page shows. (Without JavaScript the pages after it stay on their loading skeletons: their
// content is streamed in by script.)
test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('signing in says why it refused, then signs in', async ({ page }) => {
    await page.goto('/login');
    await page.getByLabel('Email').fill(USERS.admin);
    await page.getByLabel('Password').fill('not-the-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page).toHaveURL(/\/login\?/);
    await expect(page.getByRole('alert')).toHaveText('Wrong email or password.');
    await page.getByLabel('Email').fill(USERS.admin);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page).toHaveURL(/\/$/);
  });
});

// Sign out is a plain form post: it works before the client has hydrated too.
test('signing out before hydration ends the session', async ({ page }) => {
  await signedIn(page, USERS.admin);
  await page.route('**/*.wasm', () => {}); // the client never arrives
  await page.goto('/', { waitUntil: 'domcontentloaded' });
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(0);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login/);
  await page.unroute('**/*.wasm');
  await page.goto('/microservices');
  await expect(page).toHaveURL(/\/login/);
});

test('signed-out visitors are sent to the sign-in page', async ({ page }) => {
  await page.goto('/microservices');
  await expect(page).toHaveURL(/\/login/);
  await expect(page.getByRole('heading', { name: 'Sign in' })).toBeVisible();
});

for (const [role, email] of builders) {
  test(`${role}: live mode, edit mode and Microservices`, async ({ page }) => {
    await signedIn(page, email);

    // Live mode: the settings icon beside the user name opens a menu (a client-side
    // interaction, so the page is hydrated) and the Connections slider.
    await page.getByRole('link', { name: 'Open Sales Hub in live mode' }).click();
    await expect(page.getByRole('heading', { name: 'Sales Hub' })).toBeVisible();
    await hydrated(page);
    await page.getByRole('button', { name: 'Settings' }).click();
    await page.getByRole('menuitem', { name: 'Connections' }).click();
    const slider = page.getByRole('dialog', { name: 'Connections' });
    await expect(slider).toBeVisible();
    await expect(slider.getByRole('listitem', { name: 'Sales CRM' })).toBeVisible();
    await expect(slider.getByRole('listitem', { name: 'CRM System' })).toBeVisible();
    await expect(slider.getByRole('img', { name: 'System connection' })).toBeVisible();

    // Edit mode: the integrations icon in the top-right corner opens the Connections tab for
    // the component being edited.
    const tab = await openConnectionsTab(page, 'sales_hub', 'crm_deals');
    await expect(tab.getByRole('listitem', { name: 'CRM System' })).toBeVisible();
    await expect(tab.getByRole('listitem', { name: 'Sales CRM' })).toHaveCount(0);

    await page.goto('/microservices');
    await expect(page.getByRole('heading', { name: 'Microservices' })).toBeVisible();
    const table = page.getByRole('table', { name: 'Connections' });
    for (const name of ['Sales CRM', 'My CRM', 'CRM System', 'Weather', 'Issue Tracker']) {
      await expect(table.getByRole('link', { name, exact: true })).toBeVisible();
    }
  });
}

test('user: live mode shows only their own connections; no edit mode or Microservices', async ({ page }) => {
  await signedIn(page, USERS.user);
  await expect(page.getByRole('link', { name: 'Edit Sales Hub' })).toHaveCount(0);
  await expect(page.getByRole('link', { name: 'Microservices' })).toHaveCount(0);

  await page.getByRole('link', { name: 'Open Sales Hub in live mode' }).click();
  await hydrated(page);
  await page.getByRole('button', { name: 'Settings' }).click();
  await page.getByRole('menuitem', { name: 'Connections' }).click();
  const slider = page.getByRole('dialog', { name: 'Connections' });
  await expect(slider.getByRole('listitem', { name: 'My CRM' })).toBeVisible();
  await expect(slider.getByRole('listitem')).toHaveCount(1);

  await page.goto('/app/sales_hub/edit');
  await expect(page.getByRole('alert')).toHaveText('Only super admins, admins and developers can edit applications.');

  await page.goto('/microservices');
  await expect(page.getByRole('alert')).toContainText('Only super admins, admins and developers can manage connections');
});

test('signing out ends the session', async ({ page }) => {
  await signedIn(page, USERS.admin);
  await hydrated(page);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login/);
  await page.goto('/microservices');
  await expect(page).toHaveURL(/\/login/);
});
