import { test, expect } from '@playwright/test';
import { USERS, hydrated, ensureSalesCrmAuthorized, signedIn } from './helpers';

// The script editor (the help page's third way to the connections panel): a function's steps as
// text, a syntax check as it is typed, Save, Integrations and Test.
test('a builder edits a function in the script editor, opens its integrations and tests a step', async ({ page }) => {
  await signedIn(page, USERS.admin);
  await ensureSalesCrmAuthorized(page);

  await page.goto('/app/sales_hub/edit?component=forecast');
  await hydrated(page);
  const editor = page.getByRole('region', { name: 'Script editor' });
  const script = editor.getByLabel('Script of Forecast');
  await expect(script).toHaveValue(/^Deals to forecast: GET sales_crm \{api_base\}\/api\/crm\/Deals\?per_page=20\n/);
  const check = editor.getByRole('status', { name: 'Syntax check' });
  await expect(check).toContainText('Syntax OK — 1 step');
  const save = editor.getByRole('button', { name: 'Save' });
  await expect(save).toBeDisabled();

  // A wrong line is reported with its number as it is typed; Save waits for a correct script.
  const original = await script.inputValue();
  await script.fill(`${original}Deal list GET crm_system {api_base}/api/crm/Deals?per_page=2\n`);
  await expect(check).toContainText('Line 2:');
  await expect(script).toHaveAttribute('aria-invalid', 'true');
  await expect(save).toBeDisabled();
  await script.fill(`${original}Deal list: GET crm_system {api_base}/api/crm/Deals?per_page=2\n`);
  await expect(check).toContainText('Syntax OK — 2 steps, not saved');
  await save.click();
  await expect(page.getByRole('status', { name: 'Notifications' })).toContainText('Script saved (2 steps).');

  // Integrations: the panel lists the connections the script uses, the new one included.
  await editor.getByRole('button', { name: 'Integrations used by this script' }).click();
  const panel = page.getByRole('tabpanel', { name: 'Connections' });
  await expect(panel.getByRole('listitem', { name: 'Sales CRM', exact: true })).toBeVisible();
  await expect(panel.getByRole('listitem', { name: 'CRM System', exact: true })).toBeVisible();
  await page.getByRole('button', { name: 'Close integrations' }).click();
  await expect(panel).toBeHidden();

  // Testing a step whose connection is not authorized yet is an answer, not a failed request:
  // the editor says so and leads to Integrations, and the browser logs no error.
  const consoleErrors: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  const testAnswers: number[] = [];
  page.on('response', (r) => { if (r.url().includes('/api/test_script_step')) testAnswers.push(r.status()); });
  await editor.getByLabel('Step to test').selectOption({ label: 'Deal list' });
  await editor.getByRole('button', { name: 'Test' }).click();
  const needed = editor.getByRole('region', { name: 'Test result' });
  await expect(needed.getByRole('heading', { name: 'Authorization needed' })).toBeVisible();
  await expect(needed).toContainText('CRM System is not authorized yet');
  await needed.getByRole('button', { name: 'Authorize in Integrations' }).click();
  await expect(panel.getByRole('listitem', { name: 'CRM System', exact: true })).toBeVisible();
  await page.getByRole('button', { name: 'Close integrations' }).click();
  expect(testAnswers).toEqual([200]);
  expect(consoleErrors).toEqual([]);

  // Test runs the chosen step as the builder and shows the service's answer.
  await editor.getByLabel('Step to test').selectOption({ label: 'Deals to forecast' });
  await editor.getByRole('button', { name: 'Test' }).click();
  const result = editor.getByRole('region', { name: 'Test result' });
  await expect(result).toContainText('HTTP 200');
  await expect(result.getByLabel('Response body')).toContainText('Deal');
  await result.getByText(/^Headers \(\d+\)$/).click();
  await expect(result.getByRole('table', { name: 'Response headers' }).getByRole('rowheader', { name: 'content-type' }))
    .toBeVisible();
  await expect(result.getByRole('table', { name: 'Response headers' })).toContainText('application/json');

  // Saved means saved: a reload shows both steps; the seed's text is put back for other tests.
  await page.reload();
  await hydrated(page);
  await expect(script).toHaveValue(/Deal list: GET crm_system/);
  await script.fill(original);
  await save.click();
  await expect(check).toContainText('Syntax OK — 1 step');
  await expect(save).toBeDisabled();
});

test('the builder canvas draws a form, opens its integrations, and leads to its workflow', async ({ page }) => {
  await signedIn(page, USERS.developer);
  await page.goto('/app/sales_hub/edit?component=deal_intake');
  await hydrated(page);
  const outline = page.getByRole('region', { name: 'Component outline' });
  await expect(outline.getByRole('heading', { name: 'Deal Intake' })).toBeVisible();
  // The form as its users see it: its integration field is a lookup filled from the datasource.
  const form = outline.getByRole('group', { name: 'Deal Intake as users see it' });
  await expect(form).toContainText('On load, runs the workflow Load Deals');
  await expect(form).toContainText('Choose from CRM Deals');
  await expect(form).toContainText('Integration field · CRM Deals (Deals)');
  const used = outline.getByRole('list', { name: 'Connections used' });
  await expect(used).toContainText('Sales CRM');
  await expect(used).toContainText('My CRM');
  await outline.getByRole('button', { name: 'Show the connections panel' }).click();
  const panel = page.getByRole('tabpanel', { name: 'Connections' });
  await expect(panel.getByRole('listitem', { name: 'Sales CRM', exact: true })).toBeVisible();
  await page.getByRole('button', { name: 'Close integrations' }).click();
  await outline.getByRole('link', { name: 'Load Deals' }).click();
  await expect(page).toHaveURL(/component=load_deals$/);
  await expect(page.getByLabel('Script of Load Deals')).toHaveValue(/^Open deals: GET sales_crm /);

  // A page: each panel is a card naming its call and the connection it goes over.
  await page.goto('/app/sales_hub/edit?component=pipeline');
  await hydrated(page);
  const card = page.getByRole('region', { name: 'Component outline' }).getByRole('listitem').filter({ hasText: 'My deals' });
  await expect(card.getByRole('heading', { name: 'My deals' })).toBeVisible();
  await expect(card).toContainText('GET {api_base}/api/crm/Deals?per_page=5');
  await expect(card.getByRole('img', { name: 'User connection' })).toBeVisible();
  await expect(card).toContainText('My CRM');
});
