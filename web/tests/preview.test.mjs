// Browser tests of the browser preview (web/preview): the folder `mfp-host preview export`
// writes, served by a plain static server (python3 -m http.server), and `/preview/` of
// `mfp-host serve`, in Debian's Chromium with playwright-core. Every entry of the
// stand-ins' scenario catalogue (the table tests/e2e.rs runs through wasmtime, read here
// from the page's own stand-ins) runs to its end through the panel, on the page's virtual
// clock, and must show the diagnosis code the catalogue names. Screenshots go to
// test-output/preview-*.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
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
const TIMEOUT = 30_000;

const children = [];
let tmp;
let browser;
let staticUrl;
/** Every request the pages made that left their own origin. */
const foreign = [];

/** Starts a child process and resolves with the first match of `pattern` in its output. */
function startChild(command, args, pattern, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    children.push(child);
    let log = '';
    const timer = setTimeout(() => reject(new Error(`${command}: no ${pattern} within 120 s:\n${log}`)), 120_000);
    const onData = (chunk) => {
      log += chunk.toString();
      const m = log.match(pattern);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

/** A new page that records requests outside `origin`. */
async function openPage(url) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const origin = new URL(url).origin;
  page.on('request', (request) => {
    const u = request.url();
    if (!u.startsWith(origin + '/') && !u.startsWith('data:') && !u.startsWith('blob:')) foreign.push(u);
  });
  page.setDefaultTimeout(TIMEOUT);
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]');
  return page;
}

async function screenshot(page, name) {
  await page.screenshot({ path: path.join(outDir, 'preview-' + name.replace(/[^a-z0-9-]+/gi, '_') + '.png'), fullPage: true });
}

/** Forgets the preview's state and reloads the page. */
async function reset(page) {
  await page.evaluate(() => { for (const k of Object.keys(localStorage)) if (k.startsWith('mfp-preview/')) localStorage.removeItem(k); });
  await page.reload();
  await page.waitForSelector('body[data-ready="true"]');
}

/** Moves the page's clock by `seconds` (the device's and the stand-ins' time). */
function advance(page, seconds) {
  return page.evaluate((s) => window.mfpPreview.clock.advance(s), seconds);
}

/** Selects Exchange Online on the SMTP page and applies it. */
async function selectExchange(page) {
  await page.goto(page.url().replace(/#.*$/, '') + '#smtp-general');
  await page.check('input[name="service-provider"][value="exchange-online"]');
  await page.click('#smtp-form button[type=submit]');
  await page.waitForSelector('[data-testid="notice-applied"], [data-testid="notice"]');
}

/**
 * Signs in through the panel as tests/e2e.rs does: Open Authentication Page, a code that
 * waits for the approval page is approved there, then the clock moves on until the
 * sign-in ends. Answers the state line's code.
 */
async function signIn(page) {
  await page.click('[data-testid="open-auth"], #open-auth');
  // The device code, or a sign-in that could not start (its diagnosis, state unchanged).
  await page.waitForFunction(() => {
    const code = document.getElementById('signin-state').dataset.code;
    return (code && code !== 'signed-out') || document.querySelector('#signin-outcome:not([hidden]) [data-testid="signin-diagnosis"]');
  });
  if (await page.evaluate(() => document.getElementById('signin-state').dataset.code === 'signed-out')) return 'sign-in-not-started';
  const manual = await page.evaluate(() => window.mfpPreview.fakes.manual_approval());
  let approved = null;
  if (manual && await page.evaluate(() => document.getElementById('signin-state').dataset.code === 'sign-in-in-progress')) {
    await page.click('[data-testid="preview-devicelogin"] summary');
    await page.waitForFunction(() => document.getElementById('preview-user-code').value !== '');
    await page.click('[data-testid="preview-approve"]');
    approved = await page.textContent('[data-testid="preview-approve-result"]');
  }
  for (let i = 0; i < 200; i++) {
    const code = await page.evaluate(async () => (await window.mfpPreview.backend.signinStatus()).code);
    if (code !== 'sign-in-in-progress') {
      await page.waitForFunction((c) => document.getElementById('signin-state').dataset.code === c, code);
      // The sign-in page's sentence (the stand-ins' approval_words, as the demo's page
      // says it) reads "Signed in as" exactly when the panel ends signed in.
      if (approved !== null) assert.equal(/^Signed in as /.test(approved), code === 'signed-in', approved);
      return code;
    }
    await advance(page, 10);
    await page.waitForTimeout(60);
  }
  throw new Error('the sign-in never ended');
}

/** Sends the catalogue's test message through Send Test Email; answers the result. */
async function send(page, from) {
  await page.goto(page.url().replace(/#.*$/, '') + '#send-test');
  await page.fill('#send-to', 'alice@contoso.com');
  await page.fill('#send-from', from || '');
  await page.click('#send-submit');
  // Retries wait on the page's clock: move it on until the send ends.
  for (let i = 0; i < 100; i++) {
    const done = await page.evaluate(() => {
      const r = document.getElementById('send-result');
      return r.dataset.outcome || null;
    });
    if (done) return done;
    await advance(page, 15);
    await page.waitForTimeout(60);
  }
  throw new Error('the send never ended');
}

/** The diagnosis code the panel shows for a failed sign-in or send. */
function shownCode(page) {
  return page.evaluate(() => {
    const node = document.querySelector('[data-testid="send-result"]:not([hidden]) [data-testid="send-diagnosis"], #send-form [data-testid="refusal-message"]')
      || document.querySelector('[data-testid="signin-diagnosis"]');
    return node ? node.dataset.code : null;
  });
}

before(async () => {
  await mkdir(outDir, { recursive: true });
  tmp = await mkdtemp(path.join(tmpdir(), 'mfp-preview-test-'));
  const folder = path.join(tmp, 'site');
  execFileSync(binary, ['preview', 'export', folder]);
  const [, port] = await startChild('python3', ['-m', 'http.server', '0', '--bind', '127.0.0.1', '--directory', folder],
    /Serving HTTP on \S+ port (\d+)/);
  staticUrl = `http://127.0.0.1:${port}/`;
  browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
});

after(async () => {
  if (browser) await browser.close();
  for (const child of children) child.kill('SIGTERM');
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

test('the exported folder runs the component from a plain static server and shows its SHA-256', async () => {
  const page = await openPage(staticUrl);
  const inspect = JSON.parse(execFileSync(binary, ['inspect', '--json']).toString());
  assert.equal(await page.textContent('[data-testid="preview-sha256"]'), inspect.sha256);
  assert.match(await page.textContent('[data-testid="preview-note"]'), /TLS is simulated/);
  const figures = await page.evaluate(() => {
    // The component is instantiated afresh for every call, as on the device: the median.
    const times = [...window.mfpPreview.instantiationTimes].sort((a, b) => a - b);
    return {
      readyMs: window.mfpPreview.readyMs,
      instantiations: times.length,
      instantiationMedianMs: times.length ? times[Math.floor(times.length / 2)] : null,
    };
  });
  await writeFile(path.join(outDir, 'preview-figures.json'), JSON.stringify(figures, null, 2));
  await screenshot(page, 'static-ready');
  await page.context().close();
});

test('mfp-host serve serves /preview/ without a login, with the same component', async () => {
  const state = path.join(tmp, 'state');
  const [, url] = await startChild(binary, ['--state-dir', state, 'serve', '--listen', '127.0.0.1:0'],
    /listening on (https?:\/\/\S+)/, { env: { ...process.env, MFP_ADMIN_PASSWORD: 'preview-test-password' } });
  const page = await openPage(url.replace(/\/$/, '') + '/preview/');
  const inspect = JSON.parse(execFileSync(binary, ['inspect', '--json']).toString());
  assert.equal(await page.textContent('[data-testid="preview-sha256"]'), inspect.sha256);
  await screenshot(page, 'served-ready');
  await page.context().close();
});

test('every scenario of the catalogue ends in the page as it does under wasmtime', async () => {
  const page = await openPage(staticUrl);
  const catalogue = await page.evaluate(() => window.mfpPreview.catalogue);
  assert.ok(catalogue.length >= 10, 'the catalogue has its entries');
  const problems = [];
  let ran = 0;
  for (const entry of catalogue) {
    // A new kind of run needs its browser run here, as tests/e2e.rs needs its own.
    assert.ok(['sign-in', 'send', 'send-from', 'refresh-then-send'].includes(entry.run.kind), `${entry.name}: no browser run for ${entry.run.kind}`);
    await reset(page);
    await page.selectOption('[data-testid="preview-scenario"]', entry.case);
    await selectExchange(page);
    const signedIn = await signIn(page);
    let code = null;
    if (entry.run.kind === 'sign-in') {
      code = signedIn === 'signed-in' ? null : await shownCode(page);
    } else if (signedIn !== 'signed-in') {
      problems.push(`${entry.name}: the sign-in before the send ended ${signedIn} (${await shownCode(page)})`);
      continue;
    } else {
      if (entry.run.kind === 'send-from') {
        await page.evaluate(() => window.mfpPreview.backend.applySmtp({ 'from.edit-without-auth': 'yes' }));
      }
      if (entry.run.kind === 'refresh-then-send') {
        const status = await page.evaluate(() => window.mfpPreview.backend.signinStatus());
        const now = await page.evaluate(() => window.mfpPreview.clock.now());
        await advance(page, status['access-token-expires-at'] - 300 - now);
      }
      const outcome = await send(page, entry.run.kind === 'send-from' ? entry.run.from : '');
      code = outcome === 'accepted' ? null : await shownCode(page);
    }
    ran += 1;
    if (code !== entry.code) problems.push(`${entry.name}: expected ${entry.code ?? 'success'}, the page shows ${code ?? 'success'}`);
    if (entry.case === 'happy' || entry.code === 'smtp-send-as-denied' || entry.code === 'sign-in-expired' || entry.case === 'smtp-mailbox-full' || entry.case === 'smtp-throttled-mailbox-full') {
      await screenshot(page, entry.name);
    }
  }
  assert.equal(ran + problems.filter((p) => p.includes('before the send')).length, catalogue.length);
  assert.deepEqual(problems, []);
  await page.context().close();
});

test('the device state and the stand-ins survive a reload', async () => {
  const page = await openPage(staticUrl);
  await reset(page);
  await page.selectOption('[data-testid="preview-scenario"]', 'happy');
  await selectExchange(page);
  assert.equal(await signIn(page), 'signed-in');
  await page.reload();
  await page.waitForSelector('body[data-ready="true"]');
  await page.waitForFunction(() => document.getElementById('signin-state').dataset.code === 'signed-in');
  assert.equal(await page.inputValue('[data-testid="preview-scenario"]'), 'happy');
  assert.equal(await send(page, ''), 'accepted');
  await page.click('[data-testid="preview-mailbox"] summary');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="preview-messages"] tr').length === 1);
  await screenshot(page, 'after-reload-sent');
  await page.context().close();
});

test('the pages made no request outside their own origin', () => {
  assert.deepEqual(foreign, []);
});
