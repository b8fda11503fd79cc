import { expect, Page } from '@playwright/test';

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
