import { test, expect, Browser, FrameLocator, Page } from '@playwright/test';
import { USERS, consentInPopup, linkNewIfOffered, authorizeWithPopup, expectConnected, signedIn } from './helpers';
import { startHost, type Host } from '../host/backend';

const BASE_URL = process.env.BASE_URL ?? 'http://127.0.0.1:3000';
const APP = 'sales_hub';

// A builder's product on another *site* than the platform (localhost vs 127.0.0.1), whose backend
// holds a workspace API key and opens the panel for its own end users with connect sessions.
let host: Host;
let apiKey = '';

test.beforeAll(async ({ browser }) => {
  // An admin, in a browser of their own, creates the key and allows the host to embed the panel.
  const admin = await browser.newContext({ baseURL: BASE_URL });
  const adminPage = await admin.newPage();
  await signedIn(adminPage, USERS.admin);
  const created = await adminPage.request.post('/api/create_api_key', {
    form: { name: `Host backend ${Date.now()}`, scopes: 'connect_sessions' },
  });
  expect(created.status()).toBe(200);
  const { key, secret } = await created.json();
  expect(key.scopes).toHaveLength(1);
  expect(secret).toMatch(/^cmk_/);
  apiKey = secret;

  host = await startHost({ platform: BASE_URL, apiKey, app: APP });
  const saved = await adminPage.request.post('/api/set_embed_origins', { form: { app: APP, origins: host.origin } });
  expect(saved.status()).toBe(200);
  await admin.close();
});
test.afterAll(async () => {
  await host?.close();
});

/** Opens the host's page for an end user in a fresh browser; returns the page and the panel's frame. */
async function visitHost(browser: Browser, user: string): Promise<{ page: Page; frame: FrameLocator; close: () => Promise<void> }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${host.origin}/?user=${encodeURIComponent(user)}&name=Ada%20Host`);
  // The host's backend got a connect session (else its page says why, in an alert).
  const problem = page.getByRole('alert');
  if (await problem.count()) throw new Error(`The host could not create a connect session: ${await problem.innerText()}`);
  const frame = page.frameLocator('iframe[title="Connections"]');
  await expect(frame.locator('body[data-hydrated="true"]')).toHaveCount(1);
  return { page, frame, close: () => context.close() };
}

test("a host's backend opens the panel already signed in as its end user; authorize over OAuth2; the host receives connections.authorized; the second visit reuses it", async ({ browser }) => {
  const endUser = `pw-${Date.now()}`;

  // The end user never signed in to the platform: the frame shows the panel, not a sign-in form.
  const first = await visitHost(browser, endUser);
  let row = first.frame.getByRole('listitem', { name: 'My CRM', exact: true });
  await expect(row.getByRole('button', { name: 'Details of My CRM' })).toBeVisible();
  await expect(first.frame.getByRole('form', { name: 'Sign in' })).toHaveCount(0);
  await expect(row.getByText('Not connected', { exact: true })).toBeVisible();

  // A new end user: nothing authorized yet. Authorize My CRM through the provider's popup.
  const dialog = first.frame.getByRole('dialog', { name: 'Authorize My CRM' });
  await row.getByRole('button', { name: 'Authorize My CRM' }).click();
  await expect(dialog).toBeVisible();
  await linkNewIfOffered(first.page, dialog);
  await dialog.getByLabel('Name of the Authorization Account').fill('Ada from the host');
  const { popup } = await authorizeWithPopup(first.page, 'Authorize My CRM', first.frame);
  await expect(dialog.getByRole('timer', { name: 'Time left to authorize' })).toBeVisible();
  await consentInPopup(popup, true, 'bob', 'bob-password');
  await expectConnected(first.frame, dialog, 'Ada from the host');
  await expect(row.getByText('Connected', { exact: true })).toBeVisible();
  await expect(row.getByText('Ada from the host', { exact: true })).toBeVisible();
  // The host's page trusted the panel's message (from the platform's origin) and listed it.
  await expect(first.page.getByRole('list', { name: 'Panel events' })).toContainText(
    'connections.authorized sales_hub my_crm production',
  );
  await first.close();

  // Another visit, in another browser (no cookie shared with the first): a new connect session for
  // the same end user finds the authorization already there.
  const second = await visitHost(browser, endUser);
  row = second.frame.getByRole('listitem', { name: 'My CRM', exact: true });
  await expect(row.getByText('Connected', { exact: true })).toBeVisible();
  await expect(row.getByText('Ada from the host', { exact: true })).toBeVisible();
  await expect(row.getByRole('button', { name: 'Authorize My CRM' })).toHaveCount(0);
  await expect(second.frame.getByRole('form', { name: 'Sign in' })).toHaveCount(0);
  await second.close();

  // It is that end user's authorization: another end user of the same host has none.
  const other = await visitHost(browser, `${endUser}-other`);
  row = other.frame.getByRole('listitem', { name: 'My CRM', exact: true });
  await expect(row.getByRole('button', { name: 'Authorize My CRM' })).toBeVisible();
  await expect(row.getByText('Ada from the host', { exact: true })).toHaveCount(0);
  await other.close();
});

test('a used token cannot be used again', async ({ page, browser, request }) => {
  // Emails are unique on the platform: one per run, like the external id.
  const stamp = Date.now();
  const res = await request.post(`${BASE_URL}/v1/connect-sessions`, {
    headers: { Authorization: `Bearer ${apiKey}` },
    data: {
      end_user: { id: `pw-once-${stamp}`, display_name: 'Ada Host', email: `ada+${stamp}@host.example`, role: 'user' },
      application: APP,
      lifetime_seconds: 600,
    },
  });
  expect(res.status()).toBe(201);
  const session = await res.json();
  expect(session.token).toMatch(/^cst_/);
  expect(Date.parse(session.expires_at)).toBeGreaterThan(Date.now());
  const embedUrl = new URL(session.embed_url);
  expect(embedUrl.pathname).toBe(`/embed/${APP}/session`);
  expect(embedUrl.searchParams.get('token')).toBe(session.token);

  // Once: the panel, signed in as the end user (and the token is no longer in the address).
  await page.goto(session.embed_url);
  const panel = page.getByRole('main', { name: 'Connections' });
  await expect(panel.getByRole('listitem', { name: 'My CRM', exact: true })).toBeVisible();
  await expect(page.getByRole('form', { name: 'Sign in' })).toHaveCount(0);
  expect(page.url()).not.toContain(session.token);

  // Twice, in the same browser: refused.
  const refused = page.getByRole('heading', { name: 'This link to the connections panel cannot be used' });
  await page.goto(session.embed_url);
  await expect(refused).toBeVisible();
  await expect(page.getByText(/already used/)).toBeVisible();

  // Nor by anyone else who got hold of the link: no panel, no session.
  const elsewhere = await browser.newContext();
  const other = await elsewhere.newPage();
  await other.goto(session.embed_url);
  await expect(other.getByRole('heading', { name: 'This link to the connections panel cannot be used' })).toBeVisible();
  await expect(other.getByText(/already used/)).toBeVisible();
  await expect(other.getByRole('listitem', { name: 'My CRM', exact: true })).toHaveCount(0);
  await elsewhere.close();
});
