// Browser test of the panel's Relay section: the real `mfp-host serve --demo
// --relay-listen 127.0.0.1:0`, a device submitting through the relay over plain SMTP, and
// Debian's Chromium with playwright-core. Screenshots go to test-output/relay-*.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { mkdtemp, writeFile, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const webDir = path.resolve(here, '..');
const outDir = path.join(webDir, '..', 'test-output');
const binary = path.resolve(webDir, process.env.MFP_HOST_BIN || '../target/release/mfp-host');
const chromiumPath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const PASSWORD = 'relay-test-' + Math.random().toString(36).slice(2);
/** A phone, a tablet, a desktop. */
const WIDTHS = [{ width: 375, height: 812 }, { width: 768, height: 1024 }, { width: 1280, height: 900 }];

let server;
let serverLog = '';
let baseUrl;
/** The relay's address, from serve's `relay listening on smtp://ADDR` line. */
let relayAddr;
let tmp;
let context;
let panel;

/** Starts serve with the demo and the relay; resolves once both addresses are printed. */
function startServer(stateDir, passwordFile) {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, [
      '--state-dir', stateDir,
      'serve', '--demo', '--listen', '127.0.0.1:0', '--admin-password-file', passwordFile,
      '--relay-listen', '127.0.0.1:0',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    server = child;
    const timer = setTimeout(() => reject(new Error('no "listening on" line within 120 s:\n' + serverLog)), 120_000);
    const onData = (chunk) => {
      serverLog += chunk.toString();
      const relay = serverLog.match(/relay listening on smtp:\/\/(\S+)/);
      const panelUrl = serverLog.match(/^listening on (http:\/\/\S+)/m);
      if (relay && panelUrl) {
        clearTimeout(timer);
        relayAddr = relay[1];
        resolve(panelUrl[1].replace(/\/$/, ''));
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error('mfp-host exited with ' + code + ':\n' + serverLog)); });
  });
}

/**
 * A printer's plain SMTP submission to the relay: the reply to the final dot, or the first
 * refusal before it (each reply's lines joined).
 */
function submit(addr, from, to) {
  const [host, port] = [addr.slice(0, addr.lastIndexOf(':')), Number(addr.slice(addr.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ host, port });
    socket.setTimeout(60_000, () => socket.destroy(new Error('the relay did not answer within 60 s')));
    const message = `From: ${from}\r\nTo: ${to.join(', ')}\r\nSubject: Scan from the lobby\r\n\r\nThe scan.\r\n.\r\n`;
    // What to send after each reply; the greeting comes first.
    const script = ['EHLO scanner.lan\r\n', `MAIL FROM:<${from}>\r\n`, ...to.map((r) => `RCPT TO:<${r}>\r\n`), 'DATA\r\n', message];
    let buffer = '';
    let reply = '';
    let step = 0;
    socket.on('data', (chunk) => {
      buffer += chunk.toString('latin1');
      let end;
      while ((end = buffer.indexOf('\r\n')) >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        reply += line + '\n';
        if (line[3] === '-') continue;
        const code = reply.slice(0, 3);
        const last = step === script.length;
        const expected = script[step - 1] === 'DATA\r\n' ? '354' : (step === 0 ? '220' : '250');
        if (last || code !== expected) {
          socket.end('QUIT\r\n');
          resolve(reply.trim());
          return;
        }
        socket.write(script[step]);
        step += 1;
        reply = '';
      }
    });
    socket.on('error', reject);
  });
}

/** Opens Job and Error History through the tree (a drawer behind Menu on narrow screens). */
async function openHistory() {
  const link = panel.locator('[data-testid="nav-history"]');
  if (!(await link.isVisible())) {
    await panel.click('[data-testid="nav-toggle"]');
    await link.waitFor({ state: 'visible' });
  }
  await link.click();
  await panel.waitForSelector('[data-testid="page-history"]', { state: 'visible' });
}

/** Nothing on the page needs horizontal scrolling. */
async function assertFits(what) {
  const { scrollWidth, innerWidth } = await panel.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
  }));
  assert.ok(scrollWidth <= innerWidth, `${what}: the page is ${scrollWidth} px wide in a ${innerWidth} px window`);
}

/** The Relay section's rows as the page shows them. */
function relayRows() {
  return panel.locator('[data-testid="relay-row"]').evaluateAll((trs) => trs.map((tr) => ({
    succeeded: tr.dataset.succeeded === 'true',
    at: Number(tr.dataset.at),
    cells: Object.fromEntries([...tr.cells].map((td) => [td.dataset.label, td.textContent.trim()])),
  })));
}

before(async () => {
  await mkdir(outDir, { recursive: true });
  tmp = await mkdtemp(path.join(tmpdir(), 'mfp-relay-test-'));
  const stateDir = path.join(tmp, 'state');
  await mkdir(stateDir);
  const passwordFile = path.join(tmp, 'admin-password');
  await writeFile(passwordFile, PASSWORD, { mode: 0o600 });
  baseUrl = await startServer(stateDir, passwordFile);
  context = await chromium.launchPersistentContext(path.join(tmp, 'chromium-profile'), {
    executablePath: chromiumPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: WIDTHS[2],
  });
  context.setDefaultTimeout(30_000);
  panel = context.pages()[0] || await context.newPage();
  await panel.goto(baseUrl + '/');
  await panel.waitForURL(/\/login$/);
  await panel.fill('[data-testid="login-password"]', PASSWORD);
  await panel.click('[data-testid="login-submit"]');
  await panel.waitForURL(baseUrl + '/');
  await panel.waitForSelector('body[data-ready="true"]');
});

after(async () => {
  if (context) await context.close().catch(() => {});
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((resolve) => { server.once('exit', resolve); setTimeout(resolve, 5000); });
  }
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

test('the Relay section shows where the relay listens, who may use it, and that nothing was relayed yet', async () => {
  await openHistory();
  await panel.waitForFunction(() => document.getElementById('relay-state').dataset.listening === 'true');
  assert.equal((await panel.textContent('[data-testid="relay-listen"]')).trim(), relayAddr);
  assert.match(relayAddr, /^127\.0\.0\.1:[1-9]\d*$/);
  assert.equal((await panel.textContent('[data-testid="relay-allow"]')).trim(), 'this machine only');
  assert.match(await panel.textContent('[data-testid="relay-authentication"]'), /^Not required/);
  assert.ok(await panel.isVisible('[data-testid="relay-none"]'), 'no message relayed yet');
  assert.ok(await panel.isHidden('[data-testid="relay-table"]'));
});

test('relayed messages appear newest first: a refusal with its diagnosis and remedy, a delivery', async () => {
  // Before the sign-in the relay refuses: the device does not send through Exchange Online.
  const refusal = await submit(relayAddr, 'mfp@contoso.com', ['a@example.com']);
  assert.match(refusal, /^4/);
  // Signed in through the demo's device login, the relay delivers to the stand-in Exchange.
  await panel.evaluate(async () => {
    const post = (url, body) => fetch(url, { method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' }, body: body && JSON.stringify(body) });
    await post('/api/v1/smtp', { changes: { 'service-provider': 'exchange-online' } });
    const code = await (await post('/api/v1/signin')).json();
    await post('/demo/api/approve', { 'user-code': code['user-code'] });
  });
  // The server finishes the sign-in on its own timer.
  for (let i = 0; ; i += 1) {
    const code = await panel.evaluate(async () => (await (await fetch('/api/v1/signin')).json()).code);
    if (code === 'signed-in') break;
    assert.ok(i < 240, 'still ' + code + ' after 60 s');
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const delivered = await submit(relayAddr, 'mfp@contoso.com', ['a@example.com', 'b@example.com']);
  assert.match(delivered, /^250 /);

  const api = await panel.evaluate(async () => (await fetch('/api/v1/relay')).json());
  await openHistory();
  await panel.click('[data-testid="history-refresh"]');
  await panel.waitForFunction(() => document.querySelectorAll('[data-testid="relay-row"]').length === 2);
  const rows = await relayRows();
  assert.deepEqual(rows.map((r) => r.at), api.recent.map((e) => e.at), 'the device\'s list, in its order');
  const [sent, refused] = rows;
  assert.ok(sent.succeeded);
  assert.equal(sent.cells.Outcome, 'Succeeded');
  assert.match(sent.cells.Summary, /as mfp@contoso\.com to 2 recipients/);
  assert.equal(sent.cells.Diagnosis, '', 'a delivery has no diagnosis');
  assert.ok(!refused.succeeded);
  assert.equal(refused.cells.Outcome, 'Failed');
  const diagnosis = api.recent[1].diagnosis;
  assert.ok(refused.cells.Diagnosis.startsWith(diagnosis.message), refused.cells.Diagnosis);
  assert.ok(refused.cells.Diagnosis.includes('Remedy: ' + diagnosis.remedy), refused.cells.Diagnosis);
  // The relay's rows are its own: the history's table lists every event, the relayed ones too.
  const kinds = await panel.locator('[data-testid="history-row"]').evaluateAll((trs) => trs.map((tr) => tr.dataset.kind));
  assert.equal(kinds.filter((k) => k === 'relayed').length, 2);

  try {
    for (const size of WIDTHS) {
      await panel.setViewportSize(size);
      await panel.evaluate(() => window.scrollTo(0, 0));
      await assertFits(`the Relay section at ${size.width} px`);
      await panel.locator('[data-testid="relay-section"]').screenshot({ path: path.join(outDir, `relay-w${size.width}.png`) });
      await panel.screenshot({ path: path.join(outDir, `relay-page-w${size.width}.png`), fullPage: true });
    }
  } finally {
    await panel.setViewportSize(WIDTHS[2]);
  }
});

/**
 * Opens the History page with `GET /api/v1/relay` answering `body` (a shape
 * host/tests/serve_relay.rs checks against the real device), runs `check`, then restores
 * the route and the desktop width.
 */
async function withRelayAnswer(body, check) {
  const handler = (route) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(body) });
  await panel.route('**/api/v1/relay', handler);
  try {
    await openHistory();
    await panel.click('[data-testid="history-refresh"]');
    await check();
  } finally {
    await panel.unroute('**/api/v1/relay', handler);
    await panel.setViewportSize(WIDTHS[2]);
  }
}

/** Checks the Relay section fits at each width and screenshots it as `relay-NAME-wWIDTH.png`. */
async function shootRelay(name, sizes) {
  for (const size of sizes) {
    await panel.setViewportSize(size);
    await assertFits(`the ${name} relay at ${size.width} px`);
    await panel.locator('[data-testid="relay-section"]').screenshot({ path: path.join(outDir, `relay-${name}-w${size.width}.png`) });
  }
}

test('a device without a relay says how to start one', async () => {
  await withRelayAnswer({ listening: false }, async () => {
    await panel.waitForFunction(() => document.getElementById('relay-state').dataset.listening === 'false');
    assert.equal((await panel.textContent('[data-testid="relay-state"]')).trim(),
      'The relay is not running (start it with mfp-host relay or serve --relay-listen).');
    assert.ok(await panel.isHidden('[data-testid="relay-config"]'));
    assert.ok(await panel.isHidden('[data-testid="relay-recent"]'), 'no stale list of messages');
    await shootRelay('stopped', [WIDTHS[0], WIDTHS[2]]);
  });
});

test('a separate mfp-host relay process is shown with its pid, address and ranges', async () => {
  const separate = {
    listening: true, process: 'separate', pid: 4242, listen: '192.168.1.20:2525',
    allow: ['192.168.1.0/24'], authentication: true, fingerprint: 'AB:CD', recent: [],
  };
  await withRelayAnswer(separate, async () => {
    await panel.waitForFunction(() => document.getElementById('relay-state').textContent.includes('separate'));
    assert.equal((await panel.textContent('[data-testid="relay-state"]')).trim(),
      'The relay is running in a separate mfp-host relay process (pid 4242): devices nearby send through it as the signed-in account.');
    assert.equal((await panel.textContent('[data-testid="relay-listen"]')).trim(), '192.168.1.20:2525');
    assert.equal((await panel.textContent('[data-testid="relay-allow"]')).trim(), '192.168.1.0/24');
    assert.match(await panel.textContent('[data-testid="relay-authentication"]'), /^Required/);
    await shootRelay('separate', WIDTHS);
  });
});
