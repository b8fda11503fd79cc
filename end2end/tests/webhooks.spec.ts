import { test, expect } from '@playwright/test';
import { Webhook } from 'standardwebhooks';
import { USERS, hydrated, signIn, confirmDialog, signedIn, expectStacked } from './helpers';

const SANDBOX = process.env.SANDBOX_URL ?? 'http://127.0.0.1:4010';

type Received = { headers: Record<string, string>; body: string };

test('an admin registers a webhook endpoint, its test event is delivered and verifies with the Standard Webhooks library', async ({ page, request }) => {
  await signIn(page, USERS.admin);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Webhooks' }).click();
  await expect(page.getByRole('heading', { name: 'Webhooks', level: 1 })).toBeVisible();
  await hydrated(page);

  const url = `${SANDBOX}/_sandbox/webhooks/receive`;
  const form = page.getByRole('form', { name: 'Register a webhook endpoint' });
  await form.getByLabel('Endpoint URL').fill(url);
  await form.getByLabel('Description').fill('On-call alerts');
  // Every event is chosen by default; this endpoint does not want sync events.
  await form.getByLabel(/sync\.completed/).uncheck();
  await form.getByRole('button', { name: 'Register endpoint' }).click();
  const secretField = page.getByLabel('Signing secret');
  await expect(secretField).toHaveValue(/^whsec_/);
  const secret = await secretField.inputValue();

  const card = page.getByRole('region', { name: `Endpoint ${url}` });
  await expect(card.getByRole('heading', { name: 'On-call alerts' })).toBeVisible();
  await expect(card).toContainText('connection.revoked');
  await expect(card).not.toContainText('sync.completed');
  await expect(card.getByText('On', { exact: true })).toBeVisible();
  // The list never carries the secret.
  await expect(card).not.toContainText(secret);

  await card.getByRole('button', { name: 'Send test event' }).click();
  const result = card.getByRole('status');
  await expect(result).toContainText(/Test event msg_\w+: Delivered \(204\)/);
  const eventId = (await result.innerText()).match(/msg_\w+/)![0];

  await card.getByRole('button', { name: 'Show deliveries' }).click();
  const row = card.getByRole('table', { name: 'Deliveries' }).getByRole('row').filter({ hasText: eventId });
  await expect(row).toContainText('webhook.test');
  await expect(row).toContainText('Delivered (204)');
  // On a phone the delivery log is a stack of cards.
  await page.setViewportSize({ width: 390, height: 844 });
  await expectStacked(page, card.getByRole('table', { name: 'Deliveries' }), 'Result');
  await page.setViewportSize({ width: 1280, height: 800 });

  // The receiver got it; an independent Standard Webhooks verifier accepts it with the secret.
  const received: Received[] = await (await request.get(`${SANDBOX}/_sandbox/webhooks`)).json();
  const delivery = received.find((r) => r.headers['webhook-id'] === eventId);
  expect(delivery, 'the sandbox received the test event').toBeTruthy();
  const verifier = new Webhook(secret);
  const payload = verifier.verify(delivery!.body, delivery!.headers) as Record<string, unknown>;
  expect(payload.type).toBe('webhook.test');
  expect(payload.id).toBe(eventId);
  // A wrong secret, a changed body and a replay older than five minutes are all refused.
  expect(() => new Webhook('whsec_' + Buffer.from('another secret, 32 bytes long!!!').toString('base64')).verify(delivery!.body, delivery!.headers)).toThrow();
  expect(() => verifier.verify(delivery!.body.replace('webhook.test', 'webhook.fake'), delivery!.headers)).toThrow();
  const old = new Date(Date.now() - 10 * 60 * 1000);
  const replay = {
    'webhook-id': eventId,
    'webhook-timestamp': String(Math.floor(old.getTime() / 1000)),
    'webhook-signature': verifier.sign(eventId, old, delivery!.body),
  };
  expect(() => verifier.verify(delivery!.body, replay)).toThrow(/too old/i);

  // Turned off, then deleted (after a confirmation naming it).
  await card.getByRole('button', { name: 'Turn off' }).click();
  await expect(card).toContainText('Off — turned off by admin@demo.test');
  await card.getByRole('button', { name: 'Delete' }).click();
  expect(await confirmDialog(page, `Delete webhook endpoint ${url}`, 'Delete endpoint')).toContain(url);
  await expect(card).toHaveCount(0);
});

test('plain users have no webhooks page', async ({ page }) => {
  await signedIn(page, USERS.user);
  await expect(page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Webhooks' })).toHaveCount(0);
  await page.goto('/settings/webhooks');
  await expect(page.getByRole('alert')).toContainText('Only builders (developers, admins and super admins) can manage webhooks.');
});
