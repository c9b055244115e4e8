// Browser tests of the web panel: the real `mfp-host serve --demo` driven through
// Debian's Chromium with playwright-core. Each step saves a screenshot to test-output/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { mkdtemp, writeFile, mkdir, rm, readFile, readdir } from 'node:fs/promises';
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
/** The widths every page must work at: a phone, a tablet, a desktop. */
const WIDTHS = [{ width: 375, height: 812 }, { width: 768, height: 1024 }, { width: 1280, height: 900 }];
const PAGES = ['smtp-general', 'from-address', 'device-details', 'admin-consent', 'diagnostics', 'history', 'send-test', 'control-panel'];

let server;
let serverLog = '';
let baseUrl;
let tmp;
let browser;
let context;
let panel;
let shot = 0;
/** The Message-ID of the test email the demo accepted, and the To refusal's message: the history lists both. */
let sentMessageId;
let toRefusalMessage;

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

/** Saves a screenshot: the whole page, or only the window (`fullPage: false`, for a modal dialog). */
async function screenshot(page, name, fullPage = true) {
  shot += 1;
  await page.screenshot({ path: path.join(outDir, String(shot).padStart(2, '0') + '-' + name + '.png'), fullPage });
}

/** Opens a page of the panel through its navigation tree (a drawer behind Menu on narrow screens). */
async function openPage(name) {
  const link = panel.locator(`[data-testid="nav-${name}"]`);
  if (!(await link.isVisible())) {
    await panel.click('[data-testid="nav-toggle"]');
    await link.waitFor({ state: 'visible' });
  }
  await link.click();
  await panel.waitForSelector(`[data-testid="page-${name}"]`, { state: 'visible' });
}

/** Nothing on the page needs horizontal scrolling. */
async function assertFits(page, what) {
  const { scrollWidth, innerWidth } = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
  }));
  assert.ok(scrollWidth <= innerWidth, `${what}: the page is ${scrollWidth} px wide in a ${innerWidth} px window`);
}

/** The element, scrolled to, lies wholly inside the window. */
async function assertInViewport(locator, what) {
  await locator.scrollIntoViewIfNeeded();
  const box = await locator.boundingBox();
  const { w, h } = await locator.page().evaluate(() => ({ w: window.innerWidth, h: window.innerHeight }));
  assert.ok(box, `${what} is shown`);
  assert.ok(box.x >= 0 && box.y >= 0 && box.x + box.width <= w && box.y + box.height <= h,
    `${what} lies at x ${box.x}..${box.x + box.width}, y ${box.y}..${box.y + box.height} in a ${w}x${h} window`);
}

/** The settings form's invalid marks: which fields are aria-invalid, and what describes them. */
function invalidFields(formTestid) {
  return panel.evaluate((id) => [...document.querySelector(`[data-testid="${id}"]`).querySelectorAll('[aria-invalid="true"]')]
    .map((node) => ({
      field: node.dataset.group || node.dataset.key,
      description: (node.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean)
        .map((ref) => document.getElementById(ref)?.textContent || '').join(' '),
    })), formTestid);
}

/** The data-testid (else id) of the focused element. */
function focused() {
  return panel.evaluate(() => document.activeElement && (document.activeElement.dataset.testid || document.activeElement.id));
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

/**
 * A stand-in for the device's event stream that the test writes one event at a time:
 * `page.route` sends the panel's `POST /api/v1/send` here, and `next()` resolves with the
 * held response and the request once it arrives, so each state of the page can be checked
 * (a route's `fulfill` delivers a whole body at once).
 */
async function eventStreamStub() {
  const waiting = [];
  const arrived = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
      const request = { res, body: JSON.parse(body), accept: req.headers.accept };
      const w = waiting.shift();
      if (w) w(request); else arrived.push(request);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    next: () => (arrived.length ? Promise.resolve(arrived.shift()) : new Promise((resolve) => waiting.push(resolve))),
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}

/** One Server-Sent Event as the device writes it. */
function sse(name, data) {
  return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
}

/**
 * Open Authentication Page, then the shown page in a second tab: enter the code, approve.
 * `signedInAs`: an account is signed in, so the panel asks first (naming it), the test
 * confirms, and the account stays shown while the new sign-in runs.
 */
async function signIn(screens, signedInAs) {
  await openPage('smtp-general');
  // The panel opens the verification page in a new tab (after the confirmation, if any).
  const tab = panel.waitForEvent('popup');
  await panel.click('[data-testid="open-auth"]');
  if (signedInAs) {
    const dialog = panel.locator('[data-testid="confirm-dialog"]');
    await dialog.waitFor({ state: 'visible' });
    assert.ok((await panel.textContent('[data-testid="confirm-message"]')).includes(signedInAs), 'the confirmation names the signed-in account');
    await panel.click('[data-testid="confirm-ok"]');
    await dialog.waitFor({ state: 'hidden' });
  }
  await panel.waitForSelector('[data-testid="device-code"]', { state: 'visible' });
  if (signedInAs) {
    assert.ok((await panel.textContent('[data-testid="signin-state"]')).includes(signedInAs), 'the signed-in account stays shown during the new sign-in');
    assert.ok(await panel.isVisible('[data-testid="sign-out"]'), 'Sign Out stays offered during the new sign-in');
  }
  const userCode = (await panel.textContent('[data-testid="user-code"]')).trim();
  const uri = await panel.getAttribute('[data-testid="verification-uri"]', 'href');
  assert.ok(userCode.length > 0, 'a user code is shown');
  assert.match(await panel.textContent('[data-testid="countdown"]'), /^\d\d:\d\d$/);
  if (screens) await screenshot(panel, 'device-code');

  const login = await tab;
  await login.waitForURL(new URL(uri, baseUrl).href);
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
  // This run's numbered screenshots replace the last run's, which numbered them differently.
  for (const name of await readdir(outDir)) {
    if (/^\d\d-.+\.png$/.test(name)) await rm(path.join(outDir, name));
  }
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
  // The field is marked invalid, described by its refusal, and has the focus.
  const invalid = await invalidFields('smtp-form');
  assert.deepEqual(invalid.map((f) => f.field), ['receive-port']);
  assert.equal(invalid[0].description, await refusal.textContent());
  assert.equal(await focused(), 'receive-port');
  await screenshot(panel, 'receive-port-refused');
  await panel.click('[data-testid="smtp-undo"]');
  assert.equal(await panel.inputValue('[data-testid="receive-port"]'), '25');
  assert.deepEqual(await invalidFields('smtp-form'), [], 'Undo clears the invalid marks with the refusals');
  assert.equal(await panel.getAttribute('[data-testid="receive-port"]', 'aria-describedby'), null);
});

test('every invalid field of one Apply is shown at its field, and focus goes to the first in the form', async () => {
  await openPage('smtp-general');
  // The API's coming `errors` list (beside `error`), stood in for here: the device lists
  // the radio group first, the form shows the receive port first.
  const errors = [
    { code: 'stand-in-credentials', field: 'login-credentials', message: 'Stand-in refusal of [Login Credentials for Email Send].', remedy: 'Stand-in remedy for the credentials.' },
    { code: 'stand-in-port', field: 'receive-port', message: 'Stand-in refusal of [Port Number for receiving Email].', remedy: 'Stand-in remedy for the port.' },
  ];
  const handler = (route) => (route.request().method() === 'POST'
    ? route.fulfill({ status: 409, contentType: 'application/json', body: JSON.stringify({ error: errors[0], errors }) })
    : route.fallback());
  await panel.route('**/api/v1/smtp', handler);
  try {
    await panel.fill('[data-testid="receive-port"]', '2525');
    await panel.check('[data-testid="credentials-remote"]');
    await panel.click('[data-testid="smtp-apply"]');
    await panel.locator('[data-refusal-for="receive-port"]').waitFor({ state: 'visible' });
    await panel.locator('[data-refusal-for="login-credentials"]').waitFor({ state: 'visible' });
    assert.match(await panel.textContent('[data-refusal-for="receive-port"]'), /Stand-in refusal of \[Port Number/);
    assert.match(await panel.textContent('[data-refusal-for="login-credentials"]'), /Stand-in refusal of \[Login Credentials/);
    assert.ok(await panel.isHidden('[data-testid="smtp-refusal"]'), 'nothing is left for the form as a whole');
    const invalid = await invalidFields('smtp-form');
    assert.deepEqual(invalid.map((f) => f.field), ['receive-port', 'login-credentials']);
    assert.match(invalid[0].description, /Stand-in remedy for the port/);
    assert.match(invalid[1].description, /Stand-in remedy for the credentials/);
    assert.equal(await focused(), 'receive-port');
    await screenshot(panel, 'two-fields-refused');
  } finally {
    await panel.unroute('**/api/v1/smtp', handler);
  }
  await panel.click('[data-testid="smtp-undo"]');
  assert.deepEqual(await invalidFields('smtp-form'), []);
  assert.ok(await panel.isChecked('[data-testid="credentials-system"]'));
});

test('each radio group is named by its label', async () => {
  const groups = {
    'smtp-general': ['Service Provider', 'Login Credentials for Email Send'],
    'from-address': ['Allow Guest Users to Edit [From:] Field:', 'Allow Authenticated Users to send Email despite LDAP Search Failure:',
      'Edit [From:] Field when Authorization is not Required:'],
  };
  for (const [page, names] of Object.entries(groups)) {
    await openPage(page);
    for (const name of names) {
      const group = panel.getByRole('radiogroup', { name, exact: true });
      assert.equal(await group.count(), 1, `one radio group named "${name}"`);
      assert.ok(await group.getByRole('radio').count() >= 2, `"${name}" holds its choices`);
    }
    assert.equal(await panel.locator(`[data-testid="page-${page}"] input[type=radio]`).count(),
      await panel.locator(`[data-testid="page-${page}"] [role=radiogroup] input[type=radio]`).count(), 'no radio outside a named group');
  }
  await openPage('from-address');
  assert.equal(await panel.getByRole('group', { name: 'Allow Authenticated Users to Edit [From:] Field when:', exact: true }).getByRole('checkbox').count(), 2);
});

test('the panel is branded with its own name and has a favicon, no inert tabs and the seed\'s labels', async () => {
  await openPage('smtp-general');
  const header = await panel.textContent('header');
  assert.match(header, /mfp-smtp-oauth/);
  assert.doesNotMatch(header, /CentreWare/);
  assert.doesNotMatch(await panel.textContent('body'), /trademark|Xerox/i);
  assert.match(await panel.title(), /mfp-smtp-oauth/);
  const tabs = (await panel.locator('.cwis-tabs .tab').allTextContents()).map((t) => t.trim());
  assert.deepEqual(tabs, ['Properties'], 'only the tab that works is shown');

  // The favicon, linked from both pages, is served as SVG.
  assert.equal(await panel.getAttribute('link[rel=icon]', 'href'), '/favicon.svg');
  const icon = await panel.evaluate(async () => {
    const r = await fetch('/favicon.svg');
    return { status: r.status, type: r.headers.get('content-type'), text: await r.text() };
  });
  assert.equal(icon.status, 200);
  assert.match(icon.type, /^image\/svg\+xml/);
  assert.match(icon.text, /<svg/);
  const login = await context.newPage();
  await login.goto(baseUrl + '/login');
  assert.equal(await login.getAttribute('link[rel=icon]', 'href'), '/favicon.svg');
  assert.equal(await login.getAttribute('[data-testid="login-password"]', 'autocomplete'), 'current-password');
  assert.match(await login.textContent('header'), /mfp-smtp-oauth/);
  assert.doesNotMatch(await login.textContent('body'), /trademark|Xerox/i);
  await login.close();

  // The To placeholder says what the no-recipient refusal's remedy asks for.
  await openPage('send-test');
  assert.match(await panel.getAttribute('[data-testid="send-to"]', 'placeholder'), /at least one recipient address/i);

  // The seed's labels, and no setting key written by the panel itself.
  const labels = (await panel.locator('th, label').allTextContents()).map((t) => t.trim());
  assert.ok(!labels.includes('Email Address'), 'no field is called "Email Address" alone');
  for (const file of ['index.html', 'app.js', 'login.html']) {
    const text = await readFile(path.join(webDir, file), 'utf8');
    assert.doesNotMatch(text, /\(setting [a-z]/, `${file} writes no setting key for the administrator to read`);
  }
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

test('admin consent shows the URL, the permissions in the seed\'s words, and copies the URL', async () => {
  await openPage('admin-consent');
  const href = await panel.getAttribute('[data-testid="consent-url"]', 'href');
  assert.match(href, /\/adminconsent\?client_id=/);
  // The seed, "Administrator Consent on Microsoft Entra ID".
  assert.deepEqual((await panel.locator('[data-testid="consent-permissions"] li').allTextContents()).map((t) => t.trim()),
    ['Consulting users\' basic information such as email addresses', 'Accessing users\' emails']);
  assert.match(await panel.textContent('[data-testid="page-admin-consent"]'), /does not need to be obtained more than once for the same tenant/);

  // Copy URL, on a page without the Clipboard API (as on a plain-HTTP address): the copy
  // command copies it, and the button says so.
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: baseUrl });
  await panel.evaluate(() => Object.defineProperty(navigator, 'clipboard', { value: undefined, configurable: true }));
  try {
    await panel.click('[data-testid="copy-consent-url"]');
    await panel.waitForFunction(() => document.querySelector('[data-testid="copy-consent-url-feedback"]').textContent !== '');
    assert.equal(await panel.textContent('[data-testid="copy-consent-url-feedback"]'), 'Copied.');
  } finally {
    await panel.evaluate(() => { delete navigator.clipboard; });
  }
  assert.equal(await panel.evaluate(() => navigator.clipboard.readText()), await panel.textContent('[data-testid="consent-url"]'));
  await screenshot(panel, 'admin-consent');
});

test('the device code: a copy button, the page in a new tab, no repeated message, a countdown on the device\'s clock', async () => {
  await openPage('smtp-general');
  // This computer's clock is an hour fast: the countdown must still be the device's.
  await panel.evaluate(() => { window.realDateNow = Date.now; Date.now = () => window.realDateNow() + 3_600_000; });
  try {
    const tab = panel.waitForEvent('popup');
    await panel.click('[data-testid="open-auth"]');
    await panel.waitForSelector('[data-testid="device-code"]', { state: 'visible' });
    const userCode = (await panel.textContent('[data-testid="user-code"]')).trim();
    const uri = await panel.getAttribute('[data-testid="verification-uri"]', 'href');

    // The countdown: expires-at less the device's time (its Date header), within a second or two.
    const { expiresAt, deviceNow } = await panel.evaluate(async () => {
      const r = await fetch('/api/v1/signin');
      return { expiresAt: (await r.json())['expires-at'], deviceNow: Date.parse(r.headers.get('Date')) / 1000 };
    });
    const [mm, ss] = (await panel.textContent('[data-testid="countdown"]')).split(':').map(Number);
    const expected = expiresAt - deviceNow;
    assert.ok(expected > 600, `the code lives ${expected} s`);
    assert.ok(Math.abs(mm * 60 + ss - expected) <= 2, `the countdown shows ${mm}:${ss}, the device has ${expected} s left`);

    // The verification page opened in a new tab, without a handle on the panel.
    const login = await tab;
    await login.waitForURL(new URL(uri, baseUrl).href);
    assert.equal(await login.evaluate(() => window.opener), null);
    await login.close();

    // Microsoft's message repeats the code and the page: the code is shown once.
    const shown = await panel.locator('[data-testid="device-code"]').innerText();
    assert.equal(shown.split(userCode).length - 1, 1, `the code appears once in: ${shown}`);
    assert.ok(await panel.isHidden('[data-testid="device-code-message"]'));
    assert.ok(await panel.isHidden('[data-testid="auth-tab-blocked"]'), 'the tab was opened');

    // Copy: the code is on the clipboard, and the button says so.
    await panel.click('[data-testid="copy-user-code"]');
    await panel.waitForFunction(() => document.querySelector('[data-testid="copy-user-code-feedback"]').textContent !== '');
    assert.equal(await panel.textContent('[data-testid="copy-user-code-feedback"]'), 'Copied.');
    assert.equal(await panel.evaluate(() => navigator.clipboard.readText()), userCode);
    await screenshot(panel, 'device-code-copied');
    await panel.setViewportSize(WIDTHS[0]);
    try {
      await panel.locator('[data-testid="device-code"]').scrollIntoViewIfNeeded();
      await assertFits(panel, 'the device code at 375 px');
      await assertInViewport(panel.locator('[data-testid="copy-user-code"]'), 'Copy at 375 px');
      await screenshot(panel, 'w375-device-code');
    } finally {
      await panel.setViewportSize(WIDTHS[2]);
    }
  } finally {
    await panel.evaluate(() => { Date.now = window.realDateNow; });
  }

  // A browser that blocks the tab: the page's link stands out instead.
  await panel.evaluate(() => { window.realOpen = window.open; window.open = () => null; });
  try {
    await panel.click('[data-testid="open-auth"]');
    const blocked = panel.locator('[data-testid="auth-tab-blocked"]');
    await blocked.waitFor({ state: 'visible' });
    assert.equal(await panel.textContent('[data-testid="copy-user-code-feedback"]'), '', 'a new code is not "Copied." yet');
    assert.equal(await panel.getAttribute('[data-testid="auth-tab-link"]', 'href'),
      await panel.getAttribute('[data-testid="verification-uri"]', 'href'));
    await screenshot(panel, 'device-code-tab-blocked');
  } finally {
    await panel.evaluate(() => { window.open = window.realOpen; });
  }
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

test('a send refused for its To field shows the refusal at To; others stay below the form', async () => {
  await openPage('send-test');
  await panel.fill('[data-testid="send-to"]', '');
  await panel.fill('[data-testid="send-subject"]', 'Panel test without a recipient');
  await panel.click('[data-testid="send-submit"]');
  const refusal = panel.locator('[data-refusal-for="to"]');
  await refusal.waitFor({ state: 'visible', timeout: 60_000 });
  assert.match(await refusal.textContent(), /Remedy:/);
  toRefusalMessage = (await refusal.locator('[data-testid="refusal-message"]').textContent()).trim();
  assert.ok(toRefusalMessage.length > 0, 'the component\'s message is shown at To');
  // To is marked invalid and described by its hint and its refusal, and has the focus.
  assert.equal(await panel.getAttribute('[data-testid="send-to"]', 'aria-invalid'), 'true');
  const describedBy = (await panel.getAttribute('[data-testid="send-to"]', 'aria-describedby')).split(/\s+/);
  assert.ok(describedBy.includes('send-to-hint'), 'the hint still describes To');
  assert.ok(describedBy.includes(await refusal.getAttribute('id')), 'the refusal describes To');
  assert.equal(await focused(), 'send-to');
  // Nothing about the whole form is left below it but how the send ended.
  assert.equal(await panel.locator('[data-testid="send-failure"]').count(), 0);
  assert.match(await panel.textContent('[data-testid="send-attempts"]'), /^Not sent after 1 attempt, in \d+\.\d s\. Correct the marked field/);
  assert.equal(await panel.getAttribute('[data-testid="send-from"]', 'aria-invalid'), null);
  await assertFits(panel, 'the To refusal');
  await screenshot(panel, 'send-to-refused');

  // A refusal about From goes to From, one about no field below the form (a whole answer at once).
  const errors = [
    { code: 'stand-in-from', field: 'from', message: 'Stand-in refusal of [From:].', remedy: 'Stand-in remedy for From.' },
    { code: 'stand-in-whole', field: null, message: 'Stand-in refusal of the message as a whole.', remedy: 'Stand-in remedy for the message.' },
  ];
  const canned = (route) => route.fulfill({
    status: 200, contentType: 'text/event-stream',
    body: sse('attempt', { attempt: 1 }) + sse('result', { status: 422, body: { error: errors[0], errors, 'server-reply': null }, attempts: 1, 'elapsed-ms': 3 }),
  });
  await panel.route('**/api/v1/send', canned);
  try {
    await panel.fill('[data-testid="send-to"]', 'alice@contoso.com');
    await panel.fill('[data-testid="send-from"]', 'someone.else@contoso.com');
    await panel.click('[data-testid="send-submit"]');
    await panel.locator('[data-refusal-for="from"]').waitFor({ state: 'visible' });
    assert.match(await panel.textContent('[data-refusal-for="from"]'), /Stand-in refusal of \[From:\]\.Remedy: Stand-in remedy for From\./);
    assert.ok(await refusal.isHidden(), 'the last send\'s To refusal is gone');
    assert.equal(await panel.getAttribute('[data-testid="send-to"]', 'aria-invalid'), null);
    assert.equal(await panel.getAttribute('[data-testid="send-from"]', 'aria-invalid'), 'true');
    assert.equal(await focused(), 'send-from');
    const below = panel.locator('[data-testid="send-diagnosis"]');
    assert.equal(await below.count(), 1);
    assert.match(await below.textContent(), /Stand-in refusal of the message as a whole/);
  } finally {
    await panel.unroute('**/api/v1/send', canned);
  }
  await panel.fill('[data-testid="send-from"]', '');
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
  // The device's stream said which attempt went out (the status line it left), then the result.
  assert.equal(await panel.textContent('[data-testid="send-status"]'), 'Sending… attempt 1');
  assert.match(await panel.textContent('[data-testid="send-attempts"]'), /^Sent after 1 attempt, in \d+\.\d s\.$/);
  assert.ok(await panel.isHidden('[data-testid="send-attempt-log"]'), 'no attempt failed');
  // The last send's refusal at To is gone.
  assert.equal(await panel.getAttribute('[data-testid="send-to"]', 'aria-invalid'), null);
  assert.ok(await panel.isHidden('[data-refusal-for="to"]'));
  sentMessageId = (await panel.textContent('[data-testid="send-message-id"]')).trim();
  assert.match(sentMessageId, /^<.+@.+>$/);
  await screenshot(panel, 'send-accepted');

  const mailbox = await context.newPage();
  await mailbox.goto(baseUrl + '/demo/mailbox');
  await mailbox.getByText('Panel test scan').first().waitFor();
  await mailbox.getByText('scan-0001.pdf').first().waitFor();
  await screenshot(mailbox, 'demo-mailbox');
  await mailbox.close();
});

test('a send the server keeps busy shows each attempt, the reply, the wait and the result', async () => {
  // The demo's smtp-concurrent-limit scenario waits 30 s, then 60 s: a stand-in stream,
  // written one event at a time, gives the page the same events without the wait.
  const stub = await eventStreamStub();
  const reply = '432 4.3.2 Concurrent connections limit exceeded. Visit https://aka.ms/concurrent_sending for more information. [PH7P220CA0011.outlook.office365.com 2026-12-01T04:55:26.377Z F02D8391435D3908]';
  const retry = {
    diagnosis: {
      code: 'stand-in-busy', severity: 'error', field: null, fix: null,
      message: 'Stand-in: Exchange Online refused the connection: too many concurrent connections for this mailbox (limit 3). The server said: ' + reply,
      remedy: 'Wait and try again.',
    },
    'server-reply': reply, 'after-seconds': 30, 'next-attempt': 2, 'max-attempts': 3,
  };
  const accepted = {
    code: 'sent', 'message-id': '<stand-in-0001@contoso.com>', accepted: ['bob@contoso.com'],
    'server-reply': '250 2.0.0 OK <stand-in-0001@contoso.com> [Hostname=PH7PR11MB5987.namprd11.prod.outlook.com]', size: 1_372_469, attempts: 2,
  };
  const reroute = (route) => route.continue({ url: stub.url + '/api/v1/send' });
  await panel.route('**/api/v1/send', reroute);
  try {
    for (const size of [WIDTHS[0], WIDTHS[2]]) {
      const w = size.width;
      await panel.setViewportSize(size);
      await openPage('send-test');
      await panel.fill('[data-testid="send-to"]', 'bob@contoso.com');
      await panel.fill('[data-testid="send-subject"]', 'Panel test while the server is busy');
      await panel.setInputFiles('[data-testid="send-attachment"]', []);
      await panel.click('[data-testid="send-submit"]');
      const { res, body, accept } = await stub.next();
      assert.match(accept, /text\/event-stream/, 'the panel asks for the event stream');
      assert.deepEqual(body.to, ['bob@contoso.com']);
      const status = panel.locator('[data-testid="send-status"]');

      res.write(sse('attempt', { attempt: 1 }));
      await panel.waitForFunction(() => document.querySelector('[data-testid="send-status"]').textContent === 'Sending… attempt 1');
      assert.ok(await panel.isDisabled('[data-testid="send-submit"]'), 'Send waits for the result');
      res.write(sse('progress', { 'bytes-read': 343_117, total: 1_372_468 }));
      await panel.locator('[data-testid="send-bar"]').waitFor({ state: 'visible' });
      assert.equal(await panel.textContent('[data-testid="send-progress-text"]'), '343.1 kB of 1.4 MB (25 %)');
      assert.equal(await panel.evaluate(() => document.querySelector('[data-testid="send-progress-bar"]').position.toFixed(2)), '0.25');

      res.write(sse('retry', retry));
      await panel.locator('[data-testid="send-retry"]').waitFor({ state: 'visible' });
      assert.equal(await status.textContent(), 'Attempt 1 of 3 failed.');
      assert.equal(await panel.textContent('[data-testid="send-retry-reply"]'), reply);
      assert.match(await panel.textContent('[data-testid="send-retry-message"]'), /too many concurrent connections/);
      const wait = await panel.textContent('[data-testid="send-retry-wait"]');
      const seconds = Number(/^Retrying in (\d+) s \(attempt 2 of 3\)\.$/.exec(wait)?.[1]);
      assert.ok(seconds >= 1 && seconds <= 30, `the wait counts down from 30 s: "${wait}"`);
      assert.ok(await panel.isHidden('[data-testid="send-bar"]'), 'no bar while waiting');
      // The countdown is live: it goes down while the page waits.
      await panel.waitForFunction((s) => Number(document.querySelector('[data-testid="send-retry-countdown"]').dataset.seconds) < s, seconds);
      await assertFits(panel, `the retry at ${w} px`);
      await screenshot(panel, `send-progress-retrying-w${w}`);

      res.write(sse('attempt', { attempt: 2 }));
      await panel.waitForFunction(() => document.querySelector('[data-testid="send-status"]').textContent === 'Sending… attempt 2 of 3');
      assert.ok(await panel.isHidden('[data-testid="send-retry"]'));
      assert.equal(await panel.textContent('[data-testid="send-attempt-failed"]'), 'Attempt 1 of 3 failed: ' + reply);
      res.write(sse('progress', { 'bytes-read': 1_372_468, total: 1_372_468 }));
      await panel.waitForFunction(() => document.querySelector('[data-testid="send-progress-text"]').textContent.endsWith('(100 %)'));
      await screenshot(panel, `send-progress-sending-w${w}`);

      res.end(sse('result', { status: 200, body: accepted, attempts: 2, 'elapsed-ms': 31_874 }));
      await panel.locator('[data-testid="send-accepted"]').waitFor();
      assert.equal(await panel.textContent('[data-testid="send-attempts"]'), 'Sent after 2 attempts, in 32 s.');
      assert.equal(await panel.textContent('[data-testid="send-message-id"]'), accepted['message-id']);
      assert.equal(await panel.textContent('[data-testid="send-server-reply"]'), accepted['server-reply']);
      assert.ok(await panel.isVisible('[data-testid="send-attempt-failed"]'), 'the failed attempt stays listed');
      assert.ok(await panel.isHidden('[data-testid="send-progress"]'));
      assert.ok(await panel.isEnabled('[data-testid="send-submit"]'));
      await assertFits(panel, `the result at ${w} px`);
      await screenshot(panel, `send-progress-done-w${w}`);
    }

    // An answer that breaks off before its result does not claim the email was or was not sent.
    const cut = (route) => route.fulfill({ status: 200, contentType: 'text/event-stream', body: sse('attempt', { attempt: 1 }) });
    await panel.route('**/api/v1/send', cut);
    try {
      await panel.click('[data-testid="send-submit"]');
      await panel.waitForFunction(() => /^No result from the device\./.test(document.querySelector('[data-testid="send-attempts"]')?.textContent || ''));
      assert.match(await panel.textContent('[data-testid="send-diagnosis"]'), /connection to the device was lost.*Remedy: .*Job and Error History/);
      assert.equal(await panel.locator('[data-testid="send-accepted"]').count(), 0);
    } finally {
      await panel.unroute('**/api/v1/send', cut);
    }
  } finally {
    await panel.unroute('**/api/v1/send', reroute);
    await panel.setViewportSize(WIDTHS[2]);
    await stub.close();
  }
});

test('Job and Error History lists the sign-in and the send, newest first', async () => {
  const history = await panel.evaluate(async () => (await fetch('/api/v1/history')).json());
  for (const size of [WIDTHS[0], WIDTHS[2]]) {
    const w = size.width;
    await panel.setViewportSize(size);
    try {
      await openPage('history');
      await panel.locator('[data-testid="history-row"]').first().waitFor();
      const rows = await panel.locator('[data-testid="history-row"]').evaluateAll((trs) => trs.map((tr) => ({
        kind: tr.dataset.kind,
        at: Number(tr.dataset.at),
        succeeded: tr.dataset.succeeded === 'true',
        time: tr.querySelector('time')?.getAttribute('datetime'),
        cells: Object.fromEntries([...tr.cells].map((td) => [td.dataset.label, td.textContent.trim()])),
      })));
      // The page shows the device's list, in its order: newest first.
      assert.deepEqual(rows.map((r) => [r.kind, r.at]), history.map((e) => [e.kind, e.at]));
      for (let i = 1; i < rows.length; i += 1) assert.ok(rows[i - 1].at >= rows[i].at, 'newest first');
      for (const r of rows) assert.equal(Date.parse(r.time), r.at * 1000, 'each time is the entry\'s');

      // The newest entry is the demo mailbox's send; the failed send without a recipient and
      // the sign-in before it come later.
      const sent = rows[0];
      assert.equal(sent.kind, 'send');
      assert.ok(sent.succeeded);
      assert.equal(sent.cells.Outcome, 'Succeeded');
      assert.ok(sent.cells.Summary.includes(sentMessageId), 'the summary names the Message-ID');
      assert.match(sent.cells['Server Reply'], /^250 /);
      const refused = rows.findIndex((r) => r.kind === 'send' && !r.succeeded);
      assert.ok(refused > 0);
      assert.equal(rows[refused].cells.Outcome, 'Failed');
      assert.ok(rows[refused].cells.Diagnosis.startsWith(toRefusalMessage), 'the diagnosis\'s message');
      assert.match(rows[refused].cells.Diagnosis, /Remedy: /);
      const signedIn = rows.findIndex((r) => r.kind === 'sign-in' && r.succeeded);
      assert.ok(signedIn > refused, 'the sign-in is older than both sends');
      assert.equal(rows[signedIn].cells.Event, 'Sign-in');
      assert.match(rows[signedIn].cells.Summary, /Signed in as/);
      await assertFits(panel, `the history at ${w} px`);
      await screenshot(panel, `history-w${w}`);
    } finally {
      await panel.setViewportSize(WIDTHS[2]);
    }
  }
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

test('a sign-in without admin consent: the demo page and the panel tell one story, the remedy links the consent URL', async () => {
  await scenario('aadsts-65001');
  await openPage('smtp-general');
  const account = /^Signed in as (.+)\.$/.exec(await panel.textContent('[data-testid="signin-state"]'))[1];
  const tab = panel.waitForEvent('popup');
  await panel.click('[data-testid="open-auth"]');
  await panel.click('[data-testid="confirm-ok"]');
  await panel.waitForSelector('[data-testid="device-code"]', { state: 'visible' });
  const userCode = (await panel.textContent('[data-testid="user-code"]')).trim();
  const login = await tab;
  await login.waitForURL(/\/demo\/devicelogin/);
  assert.match(await login.textContent('#scenario'), /aadsts-65001/);
  await login.fill('#code', userCode);
  await login.click('#approve');
  await login.waitForFunction(() => document.getElementById('result').textContent.trim() !== '');
  const result = await login.textContent('#result');
  assert.doesNotMatch(result, /Signed in as/);
  assert.match(result, /AADSTS65001.*Nobody is signed in/);
  await screenshot(login, 'demo-devicelogin-consent-refused');
  await login.close();

  const diagnosis = panel.locator('[data-testid="signin-diagnosis"]');
  await diagnosis.waitFor({ timeout: 60_000 });
  assert.equal(await diagnosis.getAttribute('data-code'), 'sign-in-consent-required');
  const consentUrl = await panel.evaluate(async () => (await (await fetch('/api/v1/admin-consent')).json()).url);
  const link = diagnosis.locator('.remedy a');
  assert.equal(await link.count(), 1, 'the remedy\'s URL is a link');
  assert.equal(await link.getAttribute('href'), consentUrl);
  assert.equal(await link.textContent(), consentUrl);
  assert.equal(await link.getAttribute('target'), '_blank');
  await assertFits(panel, 'the consent remedy');
  await screenshot(panel, 'signin-consent-required');

  // The account signed in before is still signed in; a sign-in with consent succeeds again.
  await scenario('manual-approval');
  assert.ok((await panel.textContent('[data-testid="signin-state"]')).includes(account));
  await signIn(false, account);
});

test('Send Test Email with a From the account may not send as: SendAsDenied, in the legacy wording', async () => {
  // A user at the machine may edit [From:] (S7), so the From field's address is used.
  await openPage('from-address');
  await panel.check('[data-testid="from-edit-without-auth-yes"]');
  await panel.click('[data-testid="from-apply"]');
  await panel.locator('[data-testid="from-warning"]').first().waitFor();
  await scenario('legacy-send-as-reply');
  try {
    await openPage('send-test');
    await panel.fill('[data-testid="send-to"]', 'alice@contoso.com');
    await panel.fill('[data-testid="send-from"]', 'ceo@contoso.com');
    await panel.fill('[data-testid="send-subject"]', 'Panel test sent as someone else');
    await panel.setInputFiles('[data-testid="send-attachment"]', []);
    await panel.click('[data-testid="send-submit"]');
    const diagnosis = panel.locator('[data-testid="send-diagnosis"]');
    await diagnosis.waitFor({ timeout: 60_000 });
    assert.equal(await diagnosis.getAttribute('data-code'), 'smtp-send-as-denied');
    assert.match(await panel.textContent('[data-testid="send-server-reply"]'), /^554 5\.2\.0 STOREDRV\.Submission\.Exception:SendAsDeniedException/);
    await screenshot(panel, 'send-as-denied-legacy');
  } finally {
    await panel.fill('[data-testid="send-from"]', '');
    await scenario('manual-approval');
    await openPage('from-address');
    await panel.check('[data-testid="from-edit-without-auth-no"]');
    await panel.click('[data-testid="from-apply"]');
    await panel.locator('[data-testid="from-warning"]').first().waitFor({ state: 'detached' });
  }
});

test('the primary address differs from the UPN: the panel offers Use the UPN (S9)', async () => {
  await scenario('primary-differs-from-upn');
  await openPage('smtp-general');
  const signedIn = /^Signed in as (.+)\.$/.exec(await panel.textContent('[data-testid="signin-state"]'))[1];
  await signIn(false, signedIn);
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

test('every page works at 375, 768 and 1280 px: no horizontal scrolling, Logout and Sign Out in view', async () => {
  // A warning on the From Address page and in the Diagnostics table, to see them at each width.
  await openPage('from-address');
  await panel.check('[data-testid="from-guest-edit-yes"]');
  await panel.click('[data-testid="from-apply"]');
  await panel.locator('[data-testid="from-warning"]').first().waitFor();
  try {
    for (const size of WIDTHS) {
      const w = size.width;
      await panel.setViewportSize(size);
      for (const name of PAGES) {
        await openPage(name);
        await panel.evaluate(() => window.scrollTo(0, 0));
        await assertFits(panel, `${name} at ${w} px`);
        await assertInViewport(panel.locator('[data-testid="logout"]'), `Logout on ${name} at ${w} px`);
        await screenshot(panel, `w${w}-${name}`);
      }

      // The menu: a drawer below 800 px, the tree beside the page above.
      await openPage('smtp-general');
      if (w < 800) {
        assert.ok(await panel.isHidden('[data-testid="nav-tree"]'), `the tree is folded away at ${w} px`);
        await panel.click('[data-testid="nav-toggle"]');
        assert.equal(await panel.getAttribute('[data-testid="nav-toggle"]', 'aria-expanded'), 'true');
        await assertFits(panel, `the open menu at ${w} px`);
        await assertInViewport(panel.locator('[data-testid="nav-send-test"]'), `a menu entry at ${w} px`);
        await screenshot(panel, `w${w}-menu-open`);
        await panel.click('[data-testid="nav-toggle"]');
        assert.ok(await panel.isHidden('[data-testid="nav-tree"]'));
      } else {
        assert.ok(await panel.isVisible('[data-testid="nav-tree"]'));
        assert.ok(await panel.isHidden('[data-testid="nav-toggle"]'));
      }

      // A refusal next to its field, and Sign Out with its confirmation.
      await panel.fill('[data-testid="receive-port"]', '0');
      await panel.click('[data-testid="smtp-apply"]');
      await panel.locator('[data-refusal-for="receive-port"]').waitFor({ state: 'visible' });
      await assertFits(panel, `a refusal at ${w} px`);
      await screenshot(panel, `w${w}-smtp-general-refused`);
      await panel.click('[data-testid="smtp-undo"]');
      const signOut = panel.locator('[data-testid="sign-out"]');
      assert.ok(await signOut.isVisible(), 'an account is signed in, so Sign Out is offered');
      await assertInViewport(signOut, `Sign Out at ${w} px`);
      await signOut.click();
      const dialog = panel.locator('[data-testid="confirm-dialog"]');
      await dialog.waitFor({ state: 'visible' });
      await assertInViewport(panel.locator('[data-testid="confirm-ok"]'), `the confirmation's Sign Out at ${w} px`);
      await assertInViewport(panel.locator('[data-testid="confirm-cancel"]'), `the confirmation's Cancel at ${w} px`);
      await screenshot(panel, `w${w}-sign-out-confirm`, false);
      await panel.click('[data-testid="confirm-cancel"]');
      await dialog.waitFor({ state: 'hidden' });

      const login = await context.newPage();
      await login.setViewportSize(size);
      await login.goto(baseUrl + '/login');
      await assertFits(login, `login at ${w} px`);
      await assertInViewport(login.locator('[data-testid="login-submit"]'), `Login at ${w} px`);
      await screenshot(login, `w${w}-login`);
      await login.close();
    }
  } finally {
    await panel.setViewportSize({ width: 1280, height: 900 });
  }
  await openPage('from-address');
  await panel.check('[data-testid="from-guest-edit-no"]');
  await panel.click('[data-testid="from-apply"]');
  await panel.locator('[data-testid="from-warning"]').first().waitFor({ state: 'detached' });
});

test('a new sign-in and Sign Out ask first: Cancel keeps the account, confirming goes ahead', async () => {
  await openPage('smtp-general');
  const signinCode = () => panel.evaluate(async () => (await (await fetch('/api/v1/signin')).json()).code);
  const account = /^Signed in as (.+)\.$/.exec(await panel.textContent('[data-testid="signin-state"]'))[1];
  const dialog = panel.locator('[data-testid="confirm-dialog"]');

  // Open Authentication Page while signed in: Cancel starts nothing.
  await panel.click('[data-testid="open-auth"]');
  await dialog.waitFor({ state: 'visible' });
  assert.equal((await panel.textContent('[data-testid="confirm-title"]')).trim(), 'Open Authentication Page');
  assert.ok((await panel.textContent('[data-testid="confirm-message"]')).includes(account), 'the question names the signed-in account');
  await screenshot(panel, 'new-signin-confirm', false);
  const pages = context.pages().length;
  await panel.click('[data-testid="confirm-cancel"]');
  await dialog.waitFor({ state: 'hidden' });
  assert.equal(await signinCode(), 'signed-in');
  assert.ok(await panel.isHidden('[data-testid="device-code"]'), 'no device code after Cancel');
  assert.equal(context.pages().length, pages, 'no tab opened after Cancel');
  assert.ok((await panel.textContent('[data-testid="signin-state"]')).includes(account));

  // Confirming starts the new sign-in; the account stays signed in and shown until it succeeds.
  await signIn(false, account);
  assert.equal(await signinCode(), 'signed-in');

  // Sign Out: Cancel keeps the account, confirming signs it out.
  await panel.click('[data-testid="sign-out"]');
  await dialog.waitFor({ state: 'visible' });
  assert.equal((await panel.textContent('[data-testid="confirm-title"]')).trim(), 'Sign Out');
  assert.ok((await panel.textContent('[data-testid="confirm-message"]')).includes(account));
  await screenshot(panel, 'sign-out-confirm', false);
  await panel.keyboard.press('Escape');
  await dialog.waitFor({ state: 'hidden' });
  assert.equal(await signinCode(), 'signed-in', 'Escape cancels');
  await panel.click('[data-testid="sign-out"]');
  await dialog.waitFor({ state: 'visible' });
  await panel.click('[data-testid="confirm-cancel"]');
  await dialog.waitFor({ state: 'hidden' });
  assert.equal(await signinCode(), 'signed-in', 'Cancel keeps the account signed in');
  assert.ok(await panel.isVisible('[data-testid="sign-out"]'));

  await panel.click('[data-testid="sign-out"]');
  await dialog.waitFor({ state: 'visible' });
  await panel.click('[data-testid="confirm-ok"]');
  await panel.waitForFunction(() => document.querySelector('[data-testid="signin-state"]').dataset.code === 'signed-out');
  assert.equal(await signinCode(), 'signed-out');
  assert.ok(await panel.isHidden('[data-testid="sign-out"]'));
  await screenshot(panel, 'signed-out');

  // Signed out, Open Authentication Page goes straight to the code (and its page).
  const tab = panel.waitForEvent('popup');
  await panel.click('[data-testid="open-auth"]');
  await panel.waitForSelector('[data-testid="device-code"]', { state: 'visible' });
  await (await tab).close();
  assert.ok(await dialog.isHidden(), 'nothing to confirm when no account is signed in');

  // A sign-in in progress can be cancelled: the code goes, nobody is signed in by it.
  await panel.click('[data-testid="cancel-signin"]');
  await panel.waitForFunction(() => document.querySelector('[data-testid="signin-state"]').dataset.code === 'signed-out');
  assert.equal(await signinCode(), 'signed-out');
  assert.ok(await panel.isHidden('[data-testid="device-code"]'), 'no device code after a cancel');
  assert.ok(await panel.isHidden('[data-testid="cancel-signin"]'));
});
