import { test, expect } from '@playwright/test';
import { USERS, hydrated, signIn, signedIn } from './helpers';

test('Operations is a table with time and events in words, sign-ins folded away, filtered through the URL', async ({ page }) => {
  // An event of its own, so the log is not empty when this file runs alone on a fresh server.
  await signIn(page, USERS.user, 'not-the-password');
  await expect(page.getByRole('alert')).toHaveText('Wrong email or password.');
  await signIn(page, USERS.admin);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Operations' }).click();
  await expect(page.getByRole('heading', { name: 'Operations', level: 1 })).toBeVisible();
  const log = page.getByRole('table', { name: 'Operations log' });
  for (const column of ['Time', 'Event', 'Result', 'Who', 'Connection', 'Environment', 'Detail']) {
    await expect(log.getByRole('columnheader', { name: column, exact: true })).toBeVisible();
  }
  await expect(log.getByRole('cell', { name: 'Sign-in failed', exact: true }).first()).toBeVisible();
  // Successful sign-ins flood the log: folded away by default.
  await expect(log.getByRole('cell', { name: 'Signed in', exact: true })).toHaveCount(0);

  // The form works as a plain GET form: the filter lands in the URL, so a view can be linked.
  const form = page.getByRole('form', { name: 'Filter the operations log' });
  await form.getByLabel('Event').selectOption({ label: 'Signed in' });
  await form.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/kind=signed_in/);
  const rows = log.getByRole('row');
  await expect(rows.nth(1)).toContainText('Signed in');
  const events = await log.locator('tbody tr td:nth-child(2)').allInnerTexts();
  expect(events.length).toBeGreaterThan(0);
  expect(new Set(events)).toEqual(new Set(['Signed in']));
  await expect(form.getByLabel('Event')).toHaveValue('signed_in');

  await page.getByRole('link', { name: 'Clear' }).click();
  await expect(page).toHaveURL(/\/operations$/);
  await expect(log.getByRole('cell', { name: 'Signed in', exact: true })).toHaveCount(0);
});

test('Operations is filtered by connection through the form; disabling and enabling say so in toasts', async ({ page }) => {
  await signedIn(page, USERS.admin);
  // Two events of Weather's own.
  await page.goto('/microservices/connections/weather');
  await hydrated(page);
  const manage = page.getByRole('group', { name: 'Manage connection' });
  const toasts = page.getByRole('status', { name: 'Notifications' });
  await manage.getByRole('button', { name: 'Disable', exact: true }).click();
  await expect(toasts).toContainText('Weather disabled.');
  await manage.getByRole('button', { name: 'Enable', exact: true }).click();
  await expect(toasts).toContainText('Weather enabled.');
  await expect(manage.getByRole('button', { name: 'Disable', exact: true })).toBeVisible();

  await page.goto('/operations');
  await hydrated(page);
  const form = page.getByRole('form', { name: 'Filter the operations log' });
  await form.getByLabel('Connection (link name)').fill('weather');
  await form.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/connection=weather/);
  const log = page.getByRole('table', { name: 'Operations log' });
  await expect(log.getByRole('cell', { name: 'Connection disabled', exact: true }).first()).toBeVisible();
  await expect(log.getByRole('cell', { name: 'Connection enabled', exact: true }).first()).toBeVisible();
  // Only that connection's events.
  const connections = await log.locator('tbody tr td:nth-child(5)').allInnerTexts();
  expect(new Set(connections)).toEqual(new Set(['Weather']));
  await expect(form.getByLabel('Connection (link name)')).toHaveValue('weather');

  // A filter nothing matches: no empty table, a sentence with the way back.
  await page.goto('/operations?connection=no_such_connection');
  await expect(page.getByText('Nothing matches. Clear the filters to see every event.')).toBeVisible();
  await expect(page.getByRole('table', { name: 'Operations log' })).toHaveCount(0);
  await page.getByRole('link', { name: 'Clear' }).click();
  await expect(page).toHaveURL(/\/operations$/);
  await expect(page.getByRole('table', { name: 'Operations log' })).toBeVisible();
});
