import { BrowserContext, expect, FrameLocator, Locator, Page } from '@playwright/test';

export const PASSWORD = 'demo-password';
export const USERS = {
  superadmin: 'superadmin@demo.test',
  admin: 'admin@demo.test',
  developer: 'developer@demo.test',
  user: 'user@demo.test',
} as const;

/** Waits until the WASM client has hydrated the server-rendered page. */
export async function hydrated(page: Page) {
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
}

export async function signIn(page: Page, email: string, password = PASSWORD) {
  await page.goto('/login');
  await hydrated(page);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/**
 * Signs in through the browser context's own request client: its pages get the session cookie
 * without loading anything first (a signed-in visitor coming back with nothing cached).
 */
export async function signedInContext(context: BrowserContext, email: string, password = PASSWORD) {
  const res = await context.request.post('/api/login', { form: { email, password, next: '/' }, maxRedirects: 0 });
  expect(res.status()).toBeLessThan(400);
}

/** Signs in and waits for the signed-in home page (Applications). */
export async function signedIn(page: Page, email: string, password = PASSWORD) {
  await signIn(page, email, password);
  await expect(page.getByRole('heading', { name: 'Applications' })).toBeVisible();
}

/**
 * Plays the user on the sandbox provider's page opened in the popup: signs in if asked, then
 * allows or denies. (A second authorization in the same browser may skip both pages.)
 */
export async function consentInPopup(popup: Page, allow = true, username = 'alice', password = 'alice-password') {
  await popup.waitForLoadState('domcontentloaded');
  const login = popup.getByRole('heading', { name: 'Sign in to Sandbox CRM' });
  const consent = popup.getByRole('button', { name: allow ? 'Allow' : 'Deny' });
  const done = popup.getByRole('heading', { name: 'Authorization' });
  await expect(login.or(consent).or(done)).toBeVisible();
  if (await login.isVisible()) {
    await popup.getByLabel('Username').fill(username);
    await popup.getByLabel('Password').fill(password);
    await popup.getByRole('button', { name: 'Sign in' }).click();
    await expect(consent.or(done)).toBeVisible();
  }
  if (await consent.isVisible()) {
    await consent.click();
  }
}

/**
 * Clicks Authorize in the dialog and returns the provider's popup. `within` is where the dialog
 * is: the page, or the frame of an embedded panel (the popup still belongs to the page).
 */
export async function authorizeWithPopup(page: Page, dialogName: string, within: Page | FrameLocator = page) {
  const dialog = within.getByRole('dialog', { name: dialogName });
  const popupPromise = page.waitForEvent('popup');
  await dialog.getByRole('button', { name: 'Authorize', exact: true }).click();
  return { dialog, popup: await popupPromise };
}

/** In an open authorization dialog, leaves "Reuse" for "Link New Account" when it is offered. */
export async function linkNewIfOffered(page: Page, dialog: Locator) {
  await expect(dialog.getByLabel('Name of the Authorization Account')).toBeVisible();
  await page.waitForLoadState('networkidle');
  const linkNew = dialog.getByRole('button', { name: 'Link New Account' });
  if (await linkNew.isVisible()) await linkNew.click();
}

/**
 * Authorizes the sandbox Weather connection (API key) in its open dialog as a new account;
 * `within` is where the dialog is (the page, or an embedded panel's frame).
 */
export async function authorizeWeatherKey(page: Page, dialog: Locator, name: string, within: Page | FrameLocator = page) {
  await linkNewIfOffered(page, dialog);
  await dialog.getByLabel('Name of the Authorization Account').fill(name);
  await dialog.getByLabel('API key').fill('sandbox-weather-key');
  await dialog.getByRole('button', { name: 'Authorize', exact: true }).click();
  await expectConnected(within, dialog, name);
}

/**
 * A successful authorization closes its dialog and says "Connected as <name>." in a toast.
 * `within` is where the dialog was: the page, or the frame of an embedded panel.
 */
export async function expectConnected(within: Page | FrameLocator, dialog: Locator, name: string) {
  await expect(within.getByRole('status', { name: 'Notifications' })).toContainText(`Connected as ${name}.`);
  await expect(dialog).toBeHidden();
}

/**
 * Confirms a destructive action in its dialog (titled `title`: "Revoke Sales CRM") with
 * `button`, and returns what the dialog said (to assert it named what is affected).
 */
export async function confirmDialog(within: Page | FrameLocator, title: string, button = 'Revoke'): Promise<string> {
  const dialog = within.getByRole('dialog', { name: title });
  await expect(dialog).toBeVisible();
  const text = await dialog.innerText();
  await dialog.getByRole('button', { name: button, exact: true }).click();
  await expect(dialog).toBeHidden();
  return text;
}

/** Opens the live-mode Connections slider of an application (from the settings menu). */
export async function openConnectionsSlider(page: Page, app = 'sales_hub') {
  await page.goto(`/app/${app}`);
  await hydrated(page);
  await page.getByRole('button', { name: 'Settings' }).click();
  await page.getByRole('menuitem', { name: 'Connections' }).click();
  return page.getByRole('dialog', { name: 'Connections' });
}

/** Opens the builder on `component` of `app` and its Connections tab (the integrations icon). */
export async function openConnectionsTab(page: Page, app: string, component: string) {
  await page.goto(`/app/${app}/edit?component=${component}`);
  await hydrated(page);
  await page.getByRole('button', { name: 'Integrations' }).click();
  return page.getByRole('tabpanel', { name: 'Connections' });
}

/** Opens the live-mode Connections slider of Sales Hub and returns the Sales CRM entry. */
export async function salesCrmInSlider(page: Page) {
  const row = (await openConnectionsSlider(page)).getByRole('listitem', { name: 'Sales CRM' });
  await expect(row.getByText(/^(Connected|Not connected|Revoked|Needs reauthorization.*)$/)).toBeVisible();
  return row;
}

/**
 * The "Associated Datasources" of a panel entry, unfolded (they are folded unless one needs
 * configuring).
 */
export async function datasourcesOf(row: Locator) {
  const section = row.getByRole('region', { name: 'Associated Datasources' });
  const toggle = section.getByRole('button', { name: /^Associated Datasources \(\d+\)$/ });
  await expect(toggle).toBeVisible();
  if ((await toggle.getAttribute('aria-expanded')) !== 'true') await toggle.click();
  await expect(toggle).toHaveAttribute('aria-expanded', 'true');
  return section;
}

/** Authorizes Sales CRM from the slider unless another test already did (tests share a database). */
export async function ensureSalesCrmAuthorized(page: Page) {
  let row = await salesCrmInSlider(page);
  if (await row.getByRole('button', { name: 'Authorize Sales CRM' }).isVisible()) {
    await row.getByRole('button', { name: 'Authorize Sales CRM' }).click();
    const form = page.getByRole('dialog', { name: 'Authorize Sales CRM' });
    await linkNewIfOffered(page, form);
    await form.getByLabel('Name of the Authorization Account').fill('Sales team');
    const { dialog, popup } = await authorizeWithPopup(page, 'Authorize Sales CRM');
    await consentInPopup(popup, true);
    await expectConnected(page, dialog, 'Sales team');
    row = await salesCrmInSlider(page);
  }
  await expect(row.getByText('Connected', { exact: true })).toBeVisible();
  return row;
}


/** Revokes the connection from the panel if it is authorized (the tests share one database). */
export async function ensureRevoked(panel: Locator, name: string) {
  const row = panel.getByRole('listitem', { name, exact: true });
  await expect(row.getByRole('button', { name: `Details of ${name}` })).toBeVisible();
  if (await row.getByRole('button', { name: `Authorize ${name}` }).isVisible()) return;
  await row.getByRole('button', { name: `Details of ${name}` }).click();
  await row.getByRole('region', { name: `${name} details` }).getByRole('button', { name: `Revoke ${name}` }).click();
  await confirmDialog(panel.page(), `Revoke ${name}`);
  await expect(row.getByRole('button', { name: `Authorize ${name}` })).toBeVisible();
}

/** The page does not scroll sideways (the message names the elements that stick out). */
export async function noSidewaysScroll(page: Page) {
  const { scroll, client, wide } = await page.evaluate(() => {
    const client = document.documentElement.clientWidth;
    const wide = Array.from(document.body.querySelectorAll('*'))
      .filter((el) => el.getBoundingClientRect().right > client + 0.5 && !el.closest('.sr-only, thead'))
      .slice(-3)
      .map((el) => `${el.tagName.toLowerCase()}.${el.className} (${Math.round(el.getBoundingClientRect().right)} px)`);
    return { scroll: document.documentElement.scrollWidth, client, wide };
  });
  expect(scroll, `page wider than the screen: ${wide.join(', ')}`).toBeLessThanOrEqual(client);
}

/** The element lies within the screen's width. */
export async function withinScreen(page: Page, name: string, box: { x: number; width: number } | null) {
  expect(box, `${name} is not laid out`).not.toBeNull();
  const width = page.viewportSize()!.width;
  expect(box!.x, `${name} starts off screen`).toBeGreaterThanOrEqual(0);
  expect(box!.x + box!.width, `${name} ends off screen`).toBeLessThanOrEqual(width);
}

/**
 * On a narrow screen the table is a stack of cards: it fits the screen, its header row is hidden,
 * and each labelled cell names its column (`label`) before its value.
 */
export async function expectStacked(page: Page, table: Locator, label: string) {
  await expect(table).toBeVisible();
  await withinScreen(page, `the table ${await table.getAttribute('aria-label')}`, await table.boundingBox());
  const header = table.locator('thead');
  if (await header.count()) expect((await header.boundingBox())?.height ?? 0).toBeLessThanOrEqual(1);
  const cell = table.locator(`td[data-label="${label}"]`).first();
  await expect(cell).toBeVisible();
  expect(await cell.evaluate((el) => getComputedStyle(el, '::before').content)).toContain(label);
  await noSidewaysScroll(page);
}
