import { test, expect } from '@playwright/test';
import { USERS, hydrated, signedIn } from './helpers';

test('builder searches and filters the Microservices list, and the view is a link', async ({ page }) => {
  await signedIn(page, USERS.developer);
  await page.goto('/microservices');
  await hydrated(page);
  const table = page.getByRole('table', { name: 'Connections' });
  await expect(table.getByRole('link', { name: 'Weather', exact: true })).toBeVisible();
  await expect(page.getByRole('status').filter({ hasText: 'connections (' })).toBeVisible();

  // Search: the form puts the query in the URL, and the list follows it.
  await page.getByLabel('Search connections').fill('issue');
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page).toHaveURL(/[?&]q=issue/);
  await expect(table.getByRole('link', { name: 'Issue Tracker', exact: true })).toBeVisible();
  await expect(table.getByRole('link', { name: 'Weather', exact: true })).toHaveCount(0);
  await expect(page.getByRole('status').filter({ hasText: 'match' })).toContainText('connections match');

  // A filtered view opened from its link shows the same, filters filled in.
  await page.goto('/microservices?type=user');
  await expect(table.getByRole('link', { name: 'My CRM', exact: true })).toBeVisible();
  await expect(table.getByRole('link', { name: 'Sales CRM', exact: true })).toHaveCount(0);
  await expect(page.getByLabel('Type', { exact: true })).toHaveValue('user');

  // Nothing matches: said, with the way back.
  await page.goto('/microservices?q=no-such-connection-anywhere');
  await expect(page.getByText('No connection matches.')).toBeVisible();
  await page.getByRole('link', { name: 'Clear the filters' }).click();
  await expect(table.getByRole('link', { name: 'Weather', exact: true })).toBeVisible();

  // A value the list does not know is said as such.
  await page.goto('/microservices?status=asleep');
  await expect(page.getByRole('alert')).toContainText("Unknown status 'asleep'");
});
