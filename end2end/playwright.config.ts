import { defineConfig } from '@playwright/test';

/** The specs that also run at 390 px: axe on every page and dialog, dialogs, revoke, the
 * authorization flow, the hydration crash, wrong credentials, the slider's cards, renaming, the
 * keyboard. */
const PHONE_SPECS = /(a11y|dialogs|hydration|keyboard|panel|panel_details|create_authorize)\.spec\.ts$/;

// Debian's Chromium: `npx playwright install` cannot download browsers here.
export default defineConfig({
  testDir: './tests',
  timeout: 60_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [['list']],
  use: {
    baseURL: process.env.BASE_URL ?? 'http://127.0.0.1:3000',
    browserName: 'chromium',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
        '--no-first-run', '--disable-sync', '--disable-quic',
      ],
    },
    trace: 'off',
  },
  // Every spec at the desktop size the issues were tried at; the specs of the interface's
  // numbered items again at a phone's width (390 px), after them, on the same server.
  projects: [
    { name: 'desktop', use: { viewport: { width: 1280, height: 800 } } },
    {
      name: 'phone',
      dependencies: ['desktop'],
      testMatch: PHONE_SPECS,
      use: { viewport: { width: 390, height: 844 } },
    },
  ],
});
