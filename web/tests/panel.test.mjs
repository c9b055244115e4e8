// Browser tests of the web panel: the real `mfp-host serve --demo` driven through
// Debian's Chromium with playwright-core. Each step saves a screenshot to test-output/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, writeFile, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const webDir = path.resolve(here, '..');
const repoRoot = path.resolve(webDir, '..');
const outDir = path.join(repoRoot, 'test-output');
const binary = path.resolve(webDir, process.env.MFP_HOST_BIN || '../target/release/mfp-host');
const chromiumPath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const PASSWORD = 'panel-test-' + Math.random().toString(36).slice(2);
const TIMEOUT = 30_000;

let server;
let serverLog = '';
let baseUrl;
let tmp;
let browser;
let context;
let panel;
let shot = 0;

/** Starts `mfp-host serve --demo` and resolves with its base URL from the `listening on` line. */
function startServer(stateDir, passwordFile) {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, [
      '--state-dir', stateDir,
      'serve', '--demo', '--listen', '127.0.0.1:0', '--admin-password-file', passwordFile,
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    server = child;
    const timer = setTimeout(() => reject(new Error('no "listening on" line within 120 s:\n' + serverLog)), 120_000);
    const onData = (chunk) => {
      serverLog += chunk.toString();
      const m = serverLog.match(/listening on (http:\/\/[^\s]+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1].replace(/\/$/, ''));
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error('mfp-host exited with ' + code + ':\n' + serverLog)); });
  });
}

async function screenshot(page, name) {
  shot += 1;
  await page.screenshot({ path: path.join(outDir, String(shot).padStart(2, '0') + '-' + name + '.png'), fullPage: true });
}

/** Opens a page of the panel through its navigation tree. */
async function openPage(name) {
  await panel.click(`[data-testid="nav-${name}"]`);
  await panel.waitForSelector(`[data-testid="page-${name}"]`, { state: 'visible' });
}

/** Switches the demo's fake Microsoft endpoints to a scenario (from the panel page: same origin). */
async function scenario(name) {
  const status = await panel.evaluate(async (n) => {
    const r = await fetch('/demo/api/scenario', {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: n }),
    });
    return r.status;
  }, name);
  assert.ok(status >= 200 && status < 300, `switching to scenario ${name} answered ${status}`);
}

/** Open Authentication Page, then the shown page in a second tab: enter the code, approve. */
async function signIn(screens) {
  await openPage('smtp-general');
  await panel.click('[data-testid="open-auth"]');
  await panel.waitForSelector('[data-testid="device-code"]', { state: 'visible' });
  const userCode = (await panel.textContent('[data-testid="user-code"]')).trim();
  const uri = await panel.getAttribute('[data-testid="verification-uri"]', 'href');
  assert.ok(userCode.length > 0, 'a user code is shown');
  assert.match(await panel.textContent('[data-testid="countdown"]'), /^\d\d:\d\d$/);
  if (screens) await screenshot(panel, 'device-code');

  const login = await context.newPage();
  await login.goto(new URL(uri, baseUrl).href);
  await login.fill('#code', userCode);
  if (screens) await screenshot(login, 'demo-devicelogin');
  await login.click('#approve');
  await login.waitForFunction(() => document.getElementById('result').textContent.trim() !== '');
  if (screens) await screenshot(login, 'demo-devicelogin-approved');
  const result = await login.textContent('#result');
  await login.close();
  await panel.waitForSelector('[data-testid="signin-success"]', { timeout: 60_000 });
  return result;
}

before(async () => {
  await mkdir(outDir, { recursive: true });
  tmp = await mkdtemp(path.join(tmpdir(), 'mfp-panel-test-'));
  const stateDir = path.join(tmp, 'state');
  await mkdir(stateDir);
  const passwordFile = path.join(tmp, 'admin-password');
  await writeFile(passwordFile, PASSWORD, { mode: 0o600 });
  baseUrl = await startServer(stateDir, passwordFile);
  const userDataDir = path.join(tmp, 'chromium-profile');
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
  });
  context.setDefaultTimeout(TIMEOUT);
  browser = context;
  panel = context.pages()[0] || await context.newPage();
});

after(async () => {
  if (browser) await browser.close().catch(() => {});
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((resolve) => { server.once('exit', resolve); setTimeout(resolve, 5000); });
  }
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

test('the panel needs the admin login, and a wrong password is refused', async () => {
  await panel.goto(baseUrl + '/');
  await panel.waitForURL(/\/login$/);
  await panel.fill('[data-testid="login-password"]', 'not-the-password');
  await panel.click('[data-testid="login-submit"]');
  await panel.waitForSelector('[data-testid="login-error"]', { state: 'visible' });
  await screenshot(panel, 'login-refused');
  await panel.fill('[data-testid="login-password"]', PASSWORD);
  await screenshot(panel, 'login');
  await panel.click('[data-testid="login-submit"]');
  await panel.waitForURL(baseUrl + '/');
  await panel.waitForSelector('body[data-ready="true"]');
  await panel.waitForSelector('[data-testid="page-smtp-general"]', { state: 'visible' });
  await screenshot(panel, 'smtp-general-initial');
});

test('selecting Exchange Online fixes the server and port (S2, S3)', async () => {
  await openPage('smtp-general');
  await panel.check('[data-testid="provider-exchange-online"]');
  await panel.click('[data-testid="smtp-apply"]');
  await panel.waitForFunction(() => document.querySelector('[data-testid="smtp-server"]').value === 'smtp.office365.com');
  assert.equal(await panel.inputValue('[data-testid="send-port"]'), '587');
  assert.ok(await panel.isDisabled('[data-testid="smtp-server"]'), 'the server name is locked under Exchange Online');
  const reason = await panel.textContent('[data-locked-for="smtp-server"]');
  assert.ok(reason.trim().length > 0, 'the lock reason from the device is shown');
  assert.ok(await panel.isChecked('[data-testid="credentials-system"]'));
  await screenshot(panel, 'exchange-online-applied');

  // A refused Apply shows the device's message and remedy next to the named field.
  await panel.fill('[data-testid="receive-port"]', '0');
  await panel.click('[data-testid="smtp-apply"]');
  const refusal = panel.locator('[data-refusal-for="receive-port"]');
  await refusal.waitFor({ state: 'visible' });
  assert.match(await refusal.textContent(), /Remedy:/);
  await screenshot(panel, 'receive-port-refused');
  await panel.click('[data-testid="smtp-undo"]');
  assert.equal(await panel.inputValue('[data-testid="receive-port"]'), '25');
});

test('the control panel shows the server blank; typing one resets the provider (S4, S5)', async () => {
  await openPage('control-panel');
  await panel.waitForFunction(() => document.querySelector('[data-testid="cp-provider"]').textContent === 'Exchange Online/Outlook.com');
  assert.equal(await panel.inputValue('[data-testid="cp-server"]'), '');
  assert.ok((await panel.textContent('[data-testid="cp-notice"]')).trim().length > 0, 'the notice line explains the locked fields');
  await screenshot(panel, 'control-panel-exchange-online');

  await panel.fill('[data-testid="cp-server"]', 'mail.example.com');
  await panel.click('[data-testid="cp-ok"]');
  await panel.waitForFunction(() => document.querySelector('[data-testid="cp-provider"]').textContent === 'Not Selected');
  assert.equal(await panel.inputValue('[data-testid="cp-server"]'), 'mail.example.com');
  await panel.locator('[data-testid="cp-notice-item"]').first().waitFor();
  await screenshot(panel, 'control-panel-server-typed');

  await openPage('smtp-general');
  assert.ok(await panel.isChecked('[data-testid="provider-not-selected"]'));
  assert.equal(await panel.inputValue('[data-testid="smtp-server"]'), 'mail.example.com');

  // Select Exchange Online again.
  await panel.check('[data-testid="provider-exchange-online"]');
  await panel.click('[data-testid="smtp-apply"]');
  await panel.waitForFunction(() => document.querySelector('[data-testid="smtp-server"]').value === 'smtp.office365.com');
});

test('the From Address policy warns of SendAsDenied (S7)', async () => {
  await openPage('from-address');
  await panel.check('[data-testid="from-guest-edit-yes"]');
  await panel.click('[data-testid="from-apply"]');
  const warning = panel.locator('[data-testid="from-warning"][data-code="send-as-denied-risk"]');
  await warning.waitFor();
  assert.match(await warning.textContent(), /SendAsDenied/);
  await screenshot(panel, 'from-address-send-as-warning');
  await openPage('diagnostics');
  await panel.locator('[data-testid="diagnostic-row"][data-code="send-as-denied-risk"]').waitFor();
  await screenshot(panel, 'diagnostics-send-as-warning');
  await openPage('from-address');
  await panel.check('[data-testid="from-guest-edit-no"]');
  await panel.click('[data-testid="from-apply"]');
  await warning.waitFor({ state: 'detached' });
});

test('admin consent shows the URL', async () => {
  await openPage('admin-consent');
  const href = await panel.getAttribute('[data-testid="consent-url"]', 'href');
  assert.match(href, /\/adminconsent\?client_id=/);
  await screenshot(panel, 'admin-consent');
});

test('Open Authentication Page signs the device in with the device code (S8, S9)', async () => {
  const result = await signIn(true);
  assert.match(result, /Signed in as/);
  await screenshot(panel, 'signed-in');

  await openPage('device-details');
  await panel.waitForFunction(() => document.querySelector('[data-testid="device-email"]').value.includes('@'));
  const deviceEmail = await panel.inputValue('[data-testid="device-email"]');
  const account = await panel.textContent('[data-testid="signin-account"]');
  assert.ok(account.includes(deviceEmail), 'the Device Email Address is the signed-in account\'s address');
  assert.equal(await panel.locator('[data-testid="device-warning"] [data-testid="fix"]').count(), 0);
  await screenshot(panel, 'device-details');
});

test('a test email with an attachment reaches the demo mailbox', async () => {
  await openPage('send-test');
  await panel.fill('[data-testid="send-to"]', 'alice@contoso.com');
  await panel.fill('[data-testid="send-subject"]', 'Panel test scan');
  await panel.fill('[data-testid="send-body"]', 'Scanned from the web panel test.');
  await panel.setInputFiles('[data-testid="send-attachment"]', {
    name: 'scan-0001.pdf', mimeType: 'application/pdf',
    buffer: Buffer.from('%PDF-1.4\n% a tiny test scan\n%%EOF\n'),
  });
  await panel.click('[data-testid="send-submit"]');
  await panel.waitForSelector('[data-testid="send-accepted"]', { timeout: 60_000 });
  assert.match(await panel.textContent('[data-testid="send-server-reply"]'), /^2\d\d/);
  await screenshot(panel, 'send-accepted');

  const mailbox = await context.newPage();
  await mailbox.goto(baseUrl + '/demo/mailbox');
  await mailbox.getByText('Panel test scan').first().waitFor();
  await mailbox.getByText('scan-0001.pdf').first().waitFor();
  await screenshot(mailbox, 'demo-mailbox');
  await mailbox.close();
});

test('SMTP AUTH disabled for the tenant: the send shows the remedy', async () => {
  await scenario('smtp-auth-disabled-tenant');
  await openPage('send-test');
  await panel.fill('[data-testid="send-subject"]', 'Panel test while SMTP AUTH is disabled');
  await panel.setInputFiles('[data-testid="send-attachment"]', []);
  await panel.click('[data-testid="send-submit"]');
  const diagnosis = panel.locator('[data-testid="send-diagnosis"]');
  await diagnosis.waitFor({ timeout: 60_000 });
  assert.equal(await diagnosis.getAttribute('data-code'), 'smtp-auth-disabled-for-tenant');
  assert.match(await diagnosis.textContent(), /Remedy:.*SMTP AUTH/);
  assert.match(await panel.textContent('[data-testid="send-server-reply"]'), /5\.7\.139/);
  await screenshot(panel, 'send-smtp-auth-disabled');

  await openPage('diagnostics');
  await screenshot(panel, 'diagnostics');
  await scenario('manual-approval');
});

test('the primary address differs from the UPN: the panel offers Use the UPN (S9)', async () => {
  await scenario('primary-differs-from-upn');
  await signIn(false);
  await panel.locator('[data-testid="signin-warning"][data-code="device-email-not-upn"]').waitFor();
  await screenshot(panel, 'signed-in-upn-warning');

  await openPage('device-details');
  // The component's fix for the warning is a button, placed by the warning's field.
  const warning = panel.locator('[data-testid="device-warning"][data-code="device-email-not-upn"]');
  await warning.waitFor();
  assert.equal(await warning.getAttribute('data-field'), 'device-email');
  const useUpn = warning.locator('[data-testid="fix"]');
  const label = await useUpn.textContent();
  const upn = /^Use the UPN \((.+@.+)\)$/.exec(label)[1];
  assert.notEqual(await panel.inputValue('[data-testid="device-email"]'), upn);
  await screenshot(panel, 'device-details-upn-warning');
  await useUpn.click();
  await panel.waitForFunction((u) => document.querySelector('[data-testid="device-email"]').value === u, upn);
  await panel.locator('[data-testid="device-warning"]').first().waitFor({ state: 'detached' });
  await screenshot(panel, 'device-details-upn-applied');

  await openPage('send-test');
  await panel.fill('[data-testid="send-subject"]', 'Panel test sent as the UPN');
  await panel.click('[data-testid="send-submit"]');
  await panel.waitForSelector('[data-testid="send-accepted"]', { timeout: 60_000 });
});
