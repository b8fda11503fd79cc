import { test, expect } from '@playwright/test';
import { createServer, Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { AddressInfo } from 'node:net';
import { USERS, PASSWORD, consentInPopup, linkNewIfOffered, authorizeWithPopup, expectConnected, confirmDialog, signedIn } from './helpers';

const BASE_URL = process.env.BASE_URL ?? 'http://127.0.0.1:3000';

// A builder's own site on another *site* than the platform (localhost vs 127.0.0.1): the
// example page, pointed at the platform, served from here.
let site: Server;
let siteOrigin = '';
test.beforeAll(async () => {
  const html = readFileSync(new URL('../../app/embed/example.html', import.meta.url), 'utf8')
    .replace('var platform = location.origin;', `var platform = ${JSON.stringify(BASE_URL)};`);
  site = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(html);
  });
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
  siteOrigin = `http://localhost:${(site.address() as AddressInfo).port}`;
});
test.afterAll(async () => {
  await new Promise((resolve) => site.close(resolve));
});

test('the panel embedded on another site: sign in inside the frame, authorize over OAuth2 through the popup, events reach the page', async ({ page, browser }) => {
  // A builder allows the site (in another browser: this one stays signed out at the top level).
  const builder = await browser.newContext({ baseURL: BASE_URL });
  const builderPage = await builder.newPage();
  await signedIn(builderPage, USERS.admin);
  const saved = await builderPage.request.post('/api/set_embed_origins', { form: { app: 'sales_hub', origins: siteOrigin } });
  expect(saved.status()).toBe(200);
  await builder.close();

  await page.goto(`${siteOrigin}/?app=sales_hub`);
  const frame = page.frameLocator('iframe[title="Connections"]');
  // The frame has no session of its own yet: it offers to sign in, right there.
  const signInForm = frame.getByRole('form', { name: 'Sign in' });
  await expect(signInForm).toBeVisible();
  await expect(frame.locator('body[data-hydrated="true"]')).toHaveCount(1);
  await signInForm.getByLabel('Email').fill(USERS.developer);
  await signInForm.getByLabel('Password').fill(PASSWORD);
  await signInForm.getByRole('button', { name: 'Sign in' }).click();

  const row = frame.getByRole('listitem', { name: 'My CRM', exact: true });
  await expect(row.getByRole('button', { name: 'Details of My CRM' })).toBeVisible();
  const authorizeButton = row.getByRole('button', { name: 'Authorize My CRM' });
  const dialog = frame.getByRole('dialog', { name: 'Authorize My CRM' });
  if (!(await authorizeButton.isVisible())) {
    // Left connected by an earlier run: start from revoked.
    const revoke = row.getByRole('button', { name: 'Revoke My CRM' });
    await row.getByRole('button', { name: 'Details of My CRM' }).click();
    await revoke.click();
    await confirmDialog(frame, 'Revoke My CRM');
  }
  await authorizeButton.click();
  await expect(dialog).toBeVisible();
  await linkNewIfOffered(page, dialog);
  await dialog.getByLabel('Name of the Authorization Account').fill('Dev from the partner site');
  const { popup } = await authorizeWithPopup(page, 'Authorize My CRM', frame);
  await expect(dialog.getByRole('timer', { name: 'Time left to authorize' })).toBeVisible();
  await consentInPopup(popup, true, 'bob', 'bob-password');
  // The popup (top level, without the frame's session) hands the answer back to the frame.
  await expectConnected(frame, dialog, 'Dev from the partner site');
  await expect(row).toContainText('Connected');
  await expect(page.getByRole('list', { name: 'Events' })).toContainText('connections.authorized sales_hub my_crm production');

  // The frame's session is its own: the platform itself, at the top level, is still signed out.
  await page.goto(`${BASE_URL}/`);
  await expect(page).toHaveURL(/\/login/);

  // Leave the shared database as we found it.
  await page.goto(`${siteOrigin}/?app=sales_hub`);
  await row.getByRole('button', { name: 'Details of My CRM' }).click();
  await row.getByRole('button', { name: 'Revoke My CRM' }).click();
  await confirmDialog(frame, 'Revoke My CRM');
  await expect(row.getByRole('button', { name: 'Authorize My CRM' })).toBeVisible();
  await expect(page.getByRole('list', { name: 'Events' })).toContainText('connections.revoked sales_hub my_crm production');
});
