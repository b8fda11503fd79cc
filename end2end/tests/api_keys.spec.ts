import { test, expect } from '@playwright/test';
import { USERS, hydrated, signIn, confirmDialog, signedIn } from './helpers';

const BASE_URL = process.env.BASE_URL ?? 'http://127.0.0.1:3000';

test('an admin creates an API key (its secret shown once), the key works, and revoking it stops it', async ({ page, request }) => {
  await signIn(page, USERS.admin);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'API keys' }).click();
  await expect(page.getByRole('heading', { name: 'API keys', level: 1 })).toBeVisible();
  await hydrated(page);

  const name = `Reporting ${Date.now() % 100000}`;
  const form = page.getByRole('form', { name: 'Create an API key' });
  await form.getByLabel('Name').fill(name);
  await form.getByLabel(/Read connections and operations/).check();
  await form.getByRole('button', { name: 'Create key' }).click();
  const secretField = page.getByLabel('New API key');
  await expect(secretField).toHaveValue(/^cmk_/);
  const secret = await secretField.inputValue();

  const row = page.getByRole('table', { name: 'API keys' }).getByRole('row').filter({ hasText: name });
  await expect(row).toContainText(secret.slice(0, 12));
  await expect(row).toContainText('connect_sessions, connections:read');
  await expect(row).toContainText('Active');
  // The list never carries the secret itself.
  await expect(page.getByRole('table', { name: 'API keys' })).not.toContainText(secret);

  const auth = { Authorization: `Bearer ${secret}` };
  expect((await request.get(`${BASE_URL}/v1/connections`, { headers: auth })).status()).toBe(200);

  await row.getByRole('button', { name: `Revoke ${name}` }).click();
  await confirmDialog(page, `Revoke API key ${name}`, 'Revoke key');
  await expect(row).toContainText('Revoked');
  const refused = await request.get(`${BASE_URL}/v1/connections`, { headers: auth });
  expect(refused.status()).toBe(401);
  expect(refused.headers()['content-type']).toBe('application/problem+json');
});

test('developers have no API keys page', async ({ page }) => {
  await signedIn(page, USERS.developer);
  await expect(page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'API keys' })).toHaveCount(0);
  await page.goto('/settings/api-keys');
  await expect(page.getByRole('alert')).toContainText('Only admins and super admins can manage API keys.');
});
