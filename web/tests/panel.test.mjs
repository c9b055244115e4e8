// Browser tests of the web panel: the real `mfp-host serve --demo` driven through
// Debian's Chromium with playwright-core. Each step saves a screenshot to test-output/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
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
const PAGES = ['smtp-general', 'from-address', 'device-details', 'admin-consent', 'diagnostics', 'send-test', 'control-panel'];

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
 * Open Authentication Page, then the shown page in a second tab: enter the code, approve.
 * `signedInAs`: an account is signed in, so the panel asks first (naming it), the test
 * confirms, and the account stays shown while the new sign-in runs.
 */
async function signIn(screens, signedInAs) {
  await openPage('smtp-general');
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
  await panel.click('[data-testid="confirm-cancel"]');
  await dialog.waitFor({ state: 'hidden' });
  assert.equal(await signinCode(), 'signed-in');
  assert.ok(await panel.isHidden('[data-testid="device-code"]'), 'no device code after Cancel');
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

  // Signed out, Open Authentication Page goes straight to the code.
  await panel.click('[data-testid="open-auth"]');
  await panel.waitForSelector('[data-testid="device-code"]', { state: 'visible' });
  assert.ok(await dialog.isHidden(), 'nothing to confirm when no account is signed in');
});
