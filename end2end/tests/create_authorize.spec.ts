import { test, expect, Page } from '@playwright/test';
import { USERS, hydrated, consentInPopup, authorizeWithPopup, expectConnected, confirmDialog, linkNewIfOffered, signedIn } from './helpers';

const SANDBOX = process.env.SANDBOX_URL ?? 'http://127.0.0.1:4010';

/** The tests that create connections or connectors run in both projects on the same server:
 * the phone run names its own (" Phone"), so each run starts from what it created. */
const suffix = () => (test.info().project.name === 'phone' ? ' Phone' : '');

async function pickAndCreate(page: Page, card: string, name: string, opts: { sameForAll?: boolean; scopes?: string[]; andAuthorize?: boolean } = {}) {
  await page.goto('/microservices');
  await hydrated(page);
  await page.getByRole('button', { name: 'Create New' }).click();
  await page.getByRole('menuitem', { name: 'Pick & Create' }).click();
  await expect(page.getByRole('heading', { name: 'Pick & Create' })).toBeVisible();
  await hydrated(page);
  // Custom connectors live in their own section of the left pane.
  if (card.startsWith('Custom ')) await page.getByRole('button', { name: 'CUSTOM CONNECTOR' }).click();
  await page.getByLabel('Search connectors').fill(card.replace(/^Custom /, ''));
  await page.getByRole('button', { name: card.replace(/^Custom /, ''), exact: true }).click();
  await page.getByLabel('Connection Name').fill(name);
  for (const s of opts.scopes ?? []) await page.getByRole('checkbox', { name: new RegExp(s.replace('.', '\\.')) }).check();
  const same = page.getByLabel('Always use the same authorization for all environments');
  if (opts.sameForAll === false) await same.uncheck();
  await page.getByRole('button', { name: opts.andAuthorize === false ? 'Create' : 'Create and Authorize', exact: true }).click();
}

test('builder creates a connection from a built-in card and authorizes it with OAuth2', async ({ page }) => {
  await signedIn(page, USERS.admin);
  // Cards are searchable; the left pane switches between built-in and custom connectors.
  await page.goto('/microservices/connections/new');
  await hydrated(page);
  await expect(page.getByRole('button', { name: 'Zoho CRM' })).toBeVisible();
  // Built-in cards carry the service's mark (served from public/logos/), else a monogram.
  const zohoLogo = page.getByRole('button', { name: 'Zoho CRM' }).locator('img.logo');
  await expect(zohoLogo).toHaveAttribute('src', '/logos/zoho.svg');
  await expect.poll(() => zohoLogo.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0)).toBe(true);
  await expect(page.getByRole('button', { name: 'Sandbox CRM' }).locator('.monogram')).toHaveText('SC');
  await page.getByLabel('Search connectors').fill('drop');
  await expect(page.getByRole('list', { name: 'Connectors' }).getByRole('listitem')).toHaveCount(1);
  await page.getByRole('button', { name: 'CUSTOM CONNECTOR' }).click();
  await expect(page.getByRole('link', { name: 'Create New Custom Connector' })).toBeVisible();

  const name = `Pipeline CRM${suffix()}`;
  const link = name.toLowerCase().replaceAll(' ', '_');
  await pickAndCreate(page, 'Sandbox CRM', name, { scopes: ['crm.contacts.read'] });
  await expect(page).toHaveURL(new RegExp(`/microservices/connections/${link}(\\?|$)`));
  await hydrated(page);
  const dialog = page.getByRole('dialog', { name: `Authorize ${name}` });
  await expect(dialog).toBeVisible();
  // Same authorization everywhere: all environments locked.
  for (const env of ['Development', 'Stage', 'Production']) await expect(dialog.getByLabel(env)).toBeDisabled();
  await dialog.getByLabel('Name of the Authorization Account').fill('Alice at Sandbox');
  const { popup } = await authorizeWithPopup(page, `Authorize ${name}`);
  await expect(dialog.getByRole('timer', { name: 'Time left to authorize' })).toHaveText(/^(9[0-9]|8[0-9]) s$/);
  await consentInPopup(popup, true);
  await expectConnected(page, dialog, 'Alice at Sandbox');
  const table = page.getByRole('table', { name: 'Authorizations' });
  await expect(table.getByRole('row', { name: /Production/ })).toContainText('Alice at Sandbox');
  await expect(table.getByRole('row', { name: /Production/ })).toContainText('Connected');
  await expect(page.getByText(link, { exact: true })).toBeVisible();
});

test('a denied consent is reported and nothing is connected', async ({ page }) => {
  await signedIn(page, USERS.admin);
  const name = `Denied CRM${suffix()}`;
  await pickAndCreate(page, 'Sandbox CRM', name, { sameForAll: false, andAuthorize: false });
  await expect(page).toHaveURL(/\/microservices\/connections\/denied_crm/);
  await hydrated(page);
  await page.getByRole('button', { name: 'Authorize Development' }).click();
  await page.getByLabel('Name of the Authorization Account').fill('Denied one');
  const { dialog, popup } = await authorizeWithPopup(page, `Authorize ${name}`);
  await consentInPopup(popup, false);
  await expect(dialog.getByRole('status')).toContainText('Access was denied');
  await dialog.getByRole('button', { name: 'Close' }).click();
  await expect(page.getByRole('table', { name: 'Authorizations' })).not.toContainText('Connected');
});

test('the 90-second window (4 s on the test server) expires: the service window says so and closes, Retry is offered', async ({ page }) => {
  const base = process.env.SHORT_WINDOW_URL!;
  await page.goto(`${base}/login`);
  await hydrated(page);
  await page.getByLabel('Email').fill(USERS.admin);
  await page.getByLabel('Password').fill('demo-password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Applications' })).toBeVisible();
  await page.goto(`${base}/microservices/connections/sales_crm`);
  await hydrated(page);
  await page.getByRole('button', { name: 'Authorize Development' }).click();
  await page.getByLabel('Name of the Authorization Account').fill('Slow');
  const { dialog, popup } = await authorizeWithPopup(page, 'Authorize Sales CRM');
  const closed = popup.waitForEvent('close', { timeout: 20_000 });
  // One countdown, in the timer only; while waiting, Reopen and Cancel instead of Authorize.
  await expect(dialog.getByRole('timer')).toBeVisible();
  await expect(dialog.getByRole('status')).not.toContainText(/\d+ s left/);
  await expect(dialog.getByRole('button', { name: 'Reopen sign-in window' })).toBeVisible();
  await expect(dialog.getByRole('button', { name: 'Authorize', exact: true })).toHaveCount(0);
  await expect(dialog.getByRole('status')).toContainText('window expired', { timeout: 15_000 });
  await expect(dialog.getByRole('timer')).toHaveCount(0);
  // The service's window was sent to a page saying so, which closed itself.
  await closed;
  expect(popup.url()).toContain('/oauth/ended?why=expired');
  await expect(dialog.getByRole('button', { name: 'Retry' })).toBeEnabled();
  await expect(page.getByRole('table', { name: 'Authorizations' }).getByRole('row', { name: /Development/ })).not.toContainText('Slow');
});

test('closing the service window stops the wait and offers Retry; Cancel ends a flow for good', async ({ page }) => {
  await signedIn(page, USERS.admin);
  await page.goto('/microservices/connections/sales_crm');
  await hydrated(page);
  await page.getByRole('button', { name: 'More actions' }).click();
  await page.getByRole('menuitem', { name: 'Reauthorize' }).click();
  const dialog = page.getByRole('dialog', { name: 'Authorize Sales CRM' });
  await linkNewIfOffered(page, dialog);
  await dialog.getByLabel('Name of the Authorization Account').fill('Never finished');
  let { popup } = await authorizeWithPopup(page, 'Authorize Sales CRM');
  await expect(dialog.getByRole('timer')).toBeVisible();
  await popup.close();
  await expect(dialog.getByRole('status')).toContainText('window was closed before access was granted');
  await expect(dialog.getByRole('timer')).toHaveCount(0);

  // Retry: a new flow in a new window; Cancel: that window says so and closes, a late consent is refused.
  const next = page.waitForEvent('popup');
  await dialog.getByRole('button', { name: 'Retry' }).click();
  popup = await next;
  await expect(dialog.getByRole('timer')).toBeVisible();
  const closed = popup.waitForEvent('close', { timeout: 15_000 });
  await dialog.getByRole('button', { name: 'Cancel', exact: true }).click();
  await expect(dialog.getByRole('status')).toContainText('cancelled');
  await closed;
  expect(popup.url()).toContain('/oauth/ended?why=cancelled');
  await dialog.getByRole('button', { name: 'Close' }).click();
  await expect(dialog).toBeHidden();
  await expect(page.getByRole('table', { name: 'Authorizations' })).not.toContainText('Never finished');
});

test('custom connectors: basic auth, API key and OAuth2, each authorized', async ({ page }) => {
  await signedIn(page, USERS.admin);

  const s = suffix();
  async function builder(name: string, security: (p: Page) => Promise<void>) {
    await page.goto('/microservices/connectors/new');
    await hydrated(page);
    await page.getByLabel('Connector Name').fill(name + s);
    await page.getByRole('button', { name: 'Save & Continue' }).click();
    await page.getByLabel('API base URL').fill(SANDBOX);
    await security(page);
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await expect(page).toHaveURL(/section=custom/);
  }

  // Bad input first: a malformed URL is refused with the field named, nothing saved.
  await page.goto('/microservices/connectors/new');
  await hydrated(page);
  await page.getByLabel('Connector Name').fill('Bad <b>');
  await page.getByRole('button', { name: 'Save & Continue' }).click();
  await expect(page.getByRole('alert')).toContainText('not allowed');

  await builder('Atlassian Like', async (p) => {
    await p.getByLabel('Authentication Type').selectOption('basic');
    await p.getByLabel('Username field label').fill('Email');
    await p.getByLabel('Password field label').fill('API token');
  });
  await builder('Open Weather Like', async (p) => {
    await p.getByLabel('Authentication Type').selectOption('api_key');
    await p.getByLabel('Key Name').fill('appid');
    await p.getByLabel('Send parameters as').selectOption('query');
  });
  await builder('Dropbox Like', async (p) => {
    await p.getByLabel('Client ID').fill('dropbox-like');
    await p.getByLabel('Client Secret').fill('dropbox-like-secret');
    await p.getByLabel('Authorize URL').fill(`${SANDBOX}/auth`);
    await p.getByLabel('Access Token URL').fill('not a url');
    await p.getByLabel('Scopes').fill('files.read');
    await p.getByRole('button', { name: 'Save', exact: true }).click();
    await expect(p.getByRole('alert')).toContainText('full URL');
    // Checked in the browser by its own URL parser, as the server's would: an empty fragment too.
    await p.getByLabel('Access Token URL').fill(`${SANDBOX}/token#`);
    await p.getByRole('button', { name: 'Save', exact: true }).click();
    await expect(p.getByRole('alert')).toContainText('Remove the #fragment');
    await p.getByLabel('Access Token URL').fill(`${SANDBOX}/token`);
  });

  // Basic auth: the configured parameters are the fields asked for.
  await pickAndCreate(page, `Custom Atlassian Like${s}`, `Jira Like${s}`);
  const basic = page.getByRole('dialog', { name: `Authorize Jira Like${s}` });
  await basic.getByLabel('Name of the Authorization Account').fill('Builder');
  await basic.getByLabel('Email').fill('builder@sandbox.test');
  await basic.getByLabel('API token').fill('atlassian-api-token');
  await basic.getByRole('button', { name: 'Authorize', exact: true }).click();
  await expectConnected(page, basic, 'Builder');

  await pickAndCreate(page, `Custom Open Weather Like${s}`, `Weather Like${s}`);
  const key = page.getByRole('dialog', { name: `Authorize Weather Like${s}` });
  await key.getByLabel('Name of the Authorization Account').fill('Weather key');
  await key.getByLabel('API key').fill('sandbox-weather-key');
  await key.getByRole('button', { name: 'Authorize', exact: true }).click();
  await expectConnected(page, key, 'Weather key');
  // This custom connector declares no test request: the key is saved, and said to be unverified.
  await expect(page.getByRole('status', { name: 'Notifications' })).toContainText('Saved — not verified');

  await pickAndCreate(page, `Custom Dropbox Like${s}`, `Files Like${s}`, { scopes: ['files.read'] });
  await page.getByRole('dialog', { name: `Authorize Files Like${s}` }).getByLabel('Name of the Authorization Account').fill('Alice files');
  const { dialog, popup } = await authorizeWithPopup(page, `Authorize Files Like${s}`);
  await consentInPopup(popup, true);
  await expectConnected(page, dialog, 'Alice files');
  await expect(page.getByText('custom connector: invoke URL tasks only')).toBeVisible();
});

test('different authorizations per environment: reuse, link new account, reauthorize', async ({ page }) => {
  await signedIn(page, USERS.admin);
  // The desktop run uses the demo's Issue Tracker; the phone run makes its own the same way.
  const name = `Issue Tracker${suffix()}`;
  if (suffix()) {
    await pickAndCreate(page, 'Sandbox Atlassian', name, { sameForAll: false, andAuthorize: false });
    await expect(page).toHaveURL(/\/microservices\/connections\/issue_tracker_phone$/);
  } else {
    await page.goto('/microservices/connections/issue_tracker');
  }
  await hydrated(page);
  const table = page.getByRole('table', { name: 'Authorizations' });

  // Development only.
  await page.getByRole('button', { name: 'Authorize Development' }).click();
  let dialog = page.getByRole('dialog', { name: `Authorize ${name}` });
  await expect(dialog.getByLabel('Development')).toBeChecked();
  await expect(dialog.getByLabel('Stage')).not.toBeChecked();
  await dialog.getByLabel('Name of the Authorization Account').fill('Dev account');
  await dialog.getByLabel('Email').fill('builder@sandbox.test');
  await dialog.getByLabel('API token').fill('atlassian-api-token');
  await dialog.getByRole('button', { name: 'Authorize', exact: true }).click();
  await expectConnected(page, dialog, 'Dev account');
  await expect(table.getByRole('row', { name: /Development/ })).toContainText('Connected');
  await expect(table.getByRole('row', { name: /Stage/ })).toContainText('Not connected');

  // Stage: reuse the development account.
  await page.getByRole('button', { name: 'Authorize Stage' }).click();
  dialog = page.getByRole('dialog', { name: `Authorize ${name}` });
  await expect(dialog.getByLabel('Authorized Account')).toHaveValue(/\d+/);
  await dialog.getByRole('button', { name: 'Reuse' }).click();
  await expect(table.getByRole('row', { name: /Stage/ })).toContainText('Dev account');
  await expect(page.getByRole('status', { name: 'Notifications' })).toContainText(`${name} now uses the chosen account.`);
  await expect(dialog).toBeHidden();

  // Production: link a new account.
  await page.getByRole('button', { name: 'Authorize Production' }).click();
  dialog = page.getByRole('dialog', { name: `Authorize ${name}` });
  await dialog.getByRole('button', { name: 'Link New Account' }).click();
  await dialog.getByLabel('Name of the Authorization Account').fill('Prod account');
  await dialog.getByLabel('Email').fill('builder@sandbox.test');
  await dialog.getByLabel('API token').fill('atlassian-api-token');
  await dialog.getByRole('button', { name: 'Authorize', exact: true }).click();
  await expect(table.getByRole('row', { name: /Production/ })).toContainText('Prod account');
  await expect(dialog).toBeHidden();

  // Reauthorize from the ellipsis menu: a new account replaces the old one everywhere.
  await page.getByRole('button', { name: 'More actions' }).click();
  await page.getByRole('menuitem', { name: 'Reauthorize' }).click();
  dialog = page.getByRole('dialog', { name: `Authorize ${name}` });
  await dialog.getByRole('button', { name: 'Link New Account' }).click();
  await dialog.getByLabel('Name of the Authorization Account').fill('Fresh account');
  await dialog.getByLabel('Email').fill('builder@sandbox.test');
  await dialog.getByLabel('API token').fill('atlassian-api-token');
  await dialog.getByRole('button', { name: 'Authorize', exact: true }).click();
  for (const env of ['Development', 'Stage', 'Production']) {
    await expect(table.getByRole('row', { name: new RegExp(env) })).toContainText('Fresh account');
  }

  // Connection access: a switch per application.
  const access = page.getByRole('region', { name: 'Connection Access' });
  if (!suffix()) await expect(access.getByRole('switch', { name: 'Field Service' })).toBeChecked();
  await access.getByRole('switch', { name: 'Sales Hub' }).check();
  await expect(page.getByRole('status', { name: 'Notifications' })).toContainText('Access saved.');
  await page.reload();
  await expect(page.getByRole('region', { name: 'Connection Access' }).getByRole('switch', { name: 'Sales Hub' })).toBeChecked();
});

test('bad input: duplicate link names and markup in names are refused with clear errors', async ({ page }) => {
  await signedIn(page, USERS.admin);
  await pickAndCreate(page, 'Sandbox CRM', 'Sales CRM', { andAuthorize: false });
  await expect(page.getByRole('alert')).toContainText("link name 'sales_crm' already exists");
  await page.getByLabel('Connection Name').fill('Deals <script>');
  await page.getByRole('button', { name: 'Create', exact: true }).click();
  await expect(page.getByRole('alert')).toContainText("'<' is not allowed");
  await page.getByLabel('Connection Name').fill('');
  await page.getByLabel('Link Name').fill('Bad Link');
  await page.getByRole('button', { name: 'Create', exact: true }).click();
  await expect(page.getByRole('alert')).toContainText('Enter a name.');
});

test('switch to another account, then revoke: the connection shows not connected', async ({ page }) => {
  await signedIn(page, USERS.admin);
  await page.goto('/microservices/connections/weather');
  await hydrated(page);
  const table = page.getByRole('table', { name: 'Authorizations' });
  await page.getByRole('button', { name: 'Authorize Development' }).click();
  let dialog = page.getByRole('dialog', { name: 'Authorize Weather' });
  await dialog.getByLabel('Name of the Authorization Account').fill('First key');
  // A key the service rejects is refused with the service's own reason, and nothing is saved.
  await dialog.getByLabel('API key').fill('wrong-key');
  await dialog.getByRole('button', { name: 'Authorize', exact: true }).click();
  await expect(dialog.getByRole('alert')).toContainText('Sandbox Weather refused these credentials: Invalid API key');
  await expect(table.getByRole('row', { name: /Production/ })).not.toContainText('First key');
  await dialog.getByLabel('API key').fill('sandbox-weather-key');
  await dialog.getByRole('button', { name: 'Authorize', exact: true }).click();
  await expect(table.getByRole('row', { name: /Production/ })).toContainText('First key');
  await expect(dialog).toBeHidden();

  await page.getByRole('button', { name: 'Switch Production' }).click();
  dialog = page.getByRole('dialog', { name: 'Authorize Weather' });
  await dialog.getByRole('button', { name: 'Link New Account' }).click();
  await dialog.getByLabel('Name of the Authorization Account').fill('Second key');
  // Switching is checked the same way: a key the service rejects changes nothing.
  await dialog.getByLabel('API key').fill('wrong-key');
  await dialog.getByRole('button', { name: 'Authorize', exact: true }).click();
  await expect(dialog.getByRole('alert')).toContainText('Sandbox Weather refused these credentials: Invalid API key');
  await expect(table.getByRole('row', { name: /Production/ })).toContainText('First key');
  await dialog.getByLabel('API key').fill('sandbox-weather-key');
  await dialog.getByRole('button', { name: 'Authorize', exact: true }).click();
  for (const env of ['Development', 'Stage', 'Production']) {
    await expect(table.getByRole('row', { name: new RegExp(env) })).toContainText('Second key');
  }
  await expect(dialog).toBeHidden();

  await page.getByRole('button', { name: 'Revoke Production' }).click();
  // The confirmation says that one shared authorization covers every environment: one row.
  const asked = await confirmDialog(page, 'Revoke Weather');
  expect(asked).toMatch(/All environments/);
  expect(asked).not.toMatch(/\bProduction\s*$/m);
  for (const env of ['Development', 'Stage', 'Production']) {
    await expect(table.getByRole('row', { name: new RegExp(env) })).toContainText('Revoked');
  }
  await expect(page.getByRole('button', { name: 'Authorize Production' })).toBeVisible();
});

test('connection access switched off blocks use by that application', async ({ page }) => {
  await signedIn(page, USERS.admin);
  await page.goto('/microservices/connections/issue_tracker');
  await hydrated(page);
  const table = page.getByRole('table', { name: 'Authorizations' });
  if (await page.getByRole('button', { name: 'Authorize Production' }).isVisible()) {
    await page.getByRole('button', { name: 'Authorize Production' }).click();
    const dialog = page.getByRole('dialog', { name: `Authorize ${name}` });
    const linkNew = dialog.getByRole('button', { name: 'Link New Account' });
    if (await linkNew.isVisible()) await linkNew.click();
    await dialog.getByLabel('Name of the Authorization Account').fill('Access check');
    await dialog.getByLabel('Email').fill('builder@sandbox.test');
    await dialog.getByLabel('API token').fill('atlassian-api-token');
    await dialog.getByRole('button', { name: 'Authorize', exact: true }).click();
    await expect(table.getByRole('row', { name: /Production/ })).toContainText('Connected');
    await expect(dialog).toBeHidden();
  }
  // An invoke-URL task of Field Service, made with this browser's session.
  const call = () =>
    page.request.post('/api/invoke_url', {
      form: {
        'request[app]': 'field_service',
        'request[connection]': 'issue_tracker',
        'request[method]': 'GET',
        'request[url]': `${SANDBOX}/api/atlassian/myself`,
      },
    });
  expect((await call()).status()).toBe(200);
  const access = page.getByRole('region', { name: 'Connection Access' });
  await access.getByRole('switch', { name: 'Field Service' }).uncheck();
  await expect.poll(async () => (await call()).status()).toBe(403);
  expect(await (await call()).text()).toContain('no access to the connection');
  await access.getByRole('switch', { name: 'Field Service' }).check();
  await expect.poll(async () => (await call()).status()).toBe(200);
});
