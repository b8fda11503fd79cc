import { test, expect, Page } from '@playwright/test';
import AxeBuilder from '@axe-core/playwright';
import { USERS, hydrated, openConnectionsSlider, openConnectionsTab, authorizeWeatherKey, signedIn, noSidewaysScroll } from './helpers';

/**
 * axe (WCAG 2 A and AA rules) on every page and dialog: no serious or critical violation.
 * Each violation is listed with its rule, impact and the elements, so a failure says what to fix.
 */
async function expectAccessible(page: Page, what: string) {
  const results = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
  const bad = results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).slice(0, 5).join(' | ')}`);
  expect(bad, `${what}:\n${bad.join('\n')}`).toEqual([]);
  // Icons are inline SVG from one set, never text glyphs of mixed weights.
  const glyphs = (await page.locator('body').innerText()).match(/[◧⚙⇄✎⋯✕×☰⚠✓✔]/gu) ?? [];
  expect(glyphs, `${what}: text glyphs used as icons`).toEqual([]);
  // On a phone, no page or dialog scrolls sideways.
  if (page.viewportSize()!.width < 640) await noSidewaysScroll(page);
}

test('the sign-in page', async ({ page }) => {
  await page.goto('/login');
  await hydrated(page);
  await expectAccessible(page, 'sign-in');
});

for (const scheme of ['light', 'dark'] as const) {
  test(`every page a builder sees, and its dialogs (${scheme})`, async ({ page }) => {
    await page.emulateMedia({ colorScheme: scheme });
    await everyPage(page);
  });
}

test('dark mode follows the system', async ({ page }) => {
  const background = () => page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
  await page.goto('/login');
  await page.emulateMedia({ colorScheme: 'light' });
  const light = await background();
  await page.emulateMedia({ colorScheme: 'dark' });
  const dark = await background();
  expect(dark).not.toEqual(light);
  // Dark: every channel of the page background is low.
  const channels = dark.match(/\d+/g)!.slice(0, 3).map(Number);
  expect(Math.max(...channels)).toBeLessThan(60);
});

async function everyPage(page: Page) {
  await signedIn(page, USERS.admin);
  await expectAccessible(page, 'applications');

  for (const [path, what] of [
    ['/microservices', 'Microservices'],
    ['/microservices/connections/new', 'create a connection'],
    ['/microservices/connectors/new', 'connector builder'],
    ['/microservices/connections/sales_crm', 'connection page'],
    ['/operations', 'Operations'],
    ['/settings/webhooks', 'webhooks'],
    ['/settings/api-keys', 'API keys'],
    ['/microservices/promotion', 'promotion'],
    ['/app/sales_hub?component=deal_intake', 'live mode'],
    ['/embed/sales_hub', 'embedded panel'],
    ['/app/sales_hub/edit?component=forecast', 'script editor'],
  ]) {
    await page.goto(path);
    await hydrated(page);
    await page.waitForLoadState('networkidle');
    await expectAccessible(page, what);
  }

  // The connection page's dialogs: authorize, delete.
  await page.goto('/microservices/connections/issue_tracker');
  await hydrated(page);
  await page.getByRole('button', { name: 'More actions' }).click();
  await page.getByRole('menuitem', { name: 'Reauthorize' }).click();
  await expect(page.getByRole('dialog', { name: 'Authorize Issue Tracker' })).toBeVisible();
  await page.waitForLoadState('networkidle');
  await expectAccessible(page, 'authorize dialog');
  await page.keyboard.press('Escape');
  await page.getByRole('button', { name: 'Delete', exact: true }).click();
  await expect(page.getByRole('dialog', { name: 'Delete Issue Tracker' })).toBeVisible();
  await page.waitForLoadState('networkidle');
  await expectAccessible(page, 'delete dialog');
  await page.keyboard.press('Escape');

  // The connector builder's second step (security), filled in as far as OAuth2 asks.
  await page.goto('/microservices/connectors/new');
  await hydrated(page);
  await page.getByLabel('Connector Name').fill('Axe Check');
  await page.getByRole('button', { name: 'Save & Continue' }).click();
  await expect(page.getByLabel('API base URL')).toBeVisible();
  await page.getByLabel('Authentication Type').selectOption('oauth2');
  await expectAccessible(page, 'connector builder, security step');

  // The live slider; a connection's details and its revoke confirmation (Weather, authorized
  // with its demo key first if it is not).
  await openConnectionsSlider(page);
  await page.waitForLoadState('networkidle');
  await expectAccessible(page, 'live slider');
  const slider = await openConnectionsSlider(page, 'field_service');
  const weather = slider.getByRole('listitem', { name: 'Weather', exact: true });
  await expect(weather.getByRole('button', { name: 'Details of Weather' })).toBeVisible();
  const authorize = weather.getByRole('button', { name: 'Authorize Weather' });
  const authorizedHere = await authorize.isVisible();
  if (authorizedHere) {
    await authorize.click();
    await authorizeWeatherKey(page, page.getByRole('dialog', { name: 'Authorize Weather' }), 'Axe key');
  }
  await weather.getByRole('button', { name: 'Details of Weather' }).click();
  await weather.getByRole('region', { name: 'Weather details' }).getByRole('button', { name: 'Revoke Weather' }).click();
  const confirm = page.getByRole('dialog', { name: 'Revoke Weather' });
  await expect(confirm).toBeVisible();
  await page.waitForLoadState('networkidle');
  await expectAccessible(page, 'connection details and the revoke confirmation');
  // Left as it was found (the tests share one database): revoked again if authorized here.
  await confirm.getByRole('button', { name: authorizedHere ? 'Revoke' : 'Cancel', exact: true }).click();
  await expect(confirm).toBeHidden();
  if (authorizedHere) await expect(authorize).toBeVisible();
  // The builder's Integrations panel.
  await openConnectionsTab(page, 'sales_hub', 'deal_intake');
  await page.waitForLoadState('networkidle');
  await expectAccessible(page, 'builder with its Integrations panel');
}

test('the check itself fails on a planted violation (a button without a name)', async ({ page }) => {
  await page.goto('/login');
  await hydrated(page);
  await page.evaluate(() => document.body.insertAdjacentHTML('beforeend', '<button type="button"></button>'));
  await expect(expectAccessible(page, 'planted')).rejects.toThrow(/button-name/);
});
