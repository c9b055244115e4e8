// The preview backend: the very component the device runs (transpiled by jco, in
// component/), with the page's own capabilities, answering the panel's operations in the
// JSON shapes of the device API (web/API.md). Nothing here decides anything about the
// settings, a sign-in or a send: each operation is one call into the component, and each
// WIT record is mapped to JSON mechanically, one mapping per record, as
// host/src/frontend/views.rs does for the device (kebab-case, remedies in the web panel's
// words).
//
// Capabilities, as the device host grants them:
// - store: localStorage under `mfp-preview/store/`, with commit and commit-if atomic and
//   compare-and-swap guards compared byte for byte;
// - net: the Microsoft stand-ins (fakes/, wasm-bindgen); TLS is simulated. Only the
//   identity platform and the SMTP destination the store names are granted;
// - attachments: the files of one send, in memory;
// - config: the identity platform's address;
// - wasi:random: random.js.
// Every call runs in a fresh instance (the compiled modules are kept), as on the device.
import { instantiate } from './component/mfp_smtp_oauth.js';
import { random } from './random.js';
import initFakes, { Fakes } from './fakes/mfp_fakes.js';

export const NAMESPACE = 'mfp-preview/';
const STORE_PREFIX = NAMESPACE + 'store/';
const WORLD_KEY = NAMESPACE + 'fakes-world';
const CLOCK_KEY = NAMESPACE + 'clock-offset-ms';
export const AUTHORITY = 'https://login.microsoftonline.com';
const VERIFICATION_URI = 'https://microsoft.com/devicelogin';
const SMTP_DESTINATION_KEY = 'host/smtp-destination/v1';
const MAX_KEY_LEN = 256;
const MAX_VALUE_LEN = 1 << 20;
/// Seconds between polls the stand-ins ask for (the demo's pace).
const DEMO_INTERVAL = 2;

// ---- the device's clock: real time plus an offset a test (or the page) moves ----------

export const clock = {
  offsetMs() { return Number(localStorage.getItem(CLOCK_KEY)) || 0; },
  nowMs() { return Date.now() + this.offsetMs(); },
  /** Unix seconds, as the component is passed `now`. */
  now() { return Math.floor(this.nowMs() / 1000); },
  advance(seconds) {
    localStorage.setItem(CLOCK_KEY, String(this.offsetMs() + Math.round(Number(seconds) * 1000)));
    for (const listener of this.listeners) listener();
  },
  listeners: new Set(),
};

/** Waits until the device's clock reaches `at` (Unix seconds), on virtual time too. */
function waitUntil(at) {
  return new Promise((resolve) => {
    const check = () => {
      if (clock.now() >= at) {
        clock.listeners.delete(check);
        clearTimeout(timer);
        resolve();
        return;
      }
      clearTimeout(timer);
      timer = setTimeout(check, Math.min(1000, Math.max(50, (at - clock.now()) * 1000)));
    };
    let timer = null;
    clock.listeners.add(check);
    check();
  });
}

// ---- bytes --------------------------------------------------------------------------

function toBase64(bytes) {
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

function fromBase64(text) {
  const raw = atob(text);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

function sameBytes(a, b) {
  if (a === undefined || b === undefined) return a === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// ---- store: localStorage -------------------------------------------------------------

function checkKey(key) {
  if (typeof key !== 'string' || !key.length || key.length > MAX_KEY_LEN || !/^[\x21-\x7e]+$/.test(key)) {
    throw { tag: 'invalid-key', val: 'keys are 1 to ' + MAX_KEY_LEN + ' printable ASCII characters without spaces' };
  }
}

function storeGet(key) {
  checkKey(key);
  const text = localStorage.getItem(STORE_PREFIX + key);
  return text === null ? undefined : fromBase64(text);
}

/**
 * Applies every write or none: a write that does not fit (quota) puts back what the
 * earlier ones replaced, and the answer is `full`. Runs in one task, so no other call of
 * this page interleaves; other tabs see the writes as they land.
 */
function storeCommit(writes) {
  for (const [key, value] of writes) {
    checkKey(key);
    if (value !== undefined && value.length > MAX_VALUE_LEN) throw { tag: 'full' };
  }
  const before = writes.map(([key]) => [key, localStorage.getItem(STORE_PREFIX + key)]);
  try {
    for (const [key, value] of writes) {
      if (value === undefined) localStorage.removeItem(STORE_PREFIX + key);
      else localStorage.setItem(STORE_PREFIX + key, toBase64(value));
    }
  } catch (err) {
    for (const [key, text] of before) {
      try {
        if (text === null) localStorage.removeItem(STORE_PREFIX + key);
        else localStorage.setItem(STORE_PREFIX + key, text);
      } catch (_) { /* putting back an old value frees as much as it takes */ }
    }
    if (err && err.name === 'QuotaExceededError') throw { tag: 'full' };
    throw { tag: 'unavailable', val: String(err && err.message || err) };
  }
}

const store = {
  get(key) { return storeGet(key); },
  commit(writes) { storeCommit(writes); },
  /** Compare-and-swap: every guard holds (byte for byte, `none` = absent), or `conflict`. */
  commitIf(guards, writes) {
    for (const [key, expected] of guards) {
      if (!sameBytes(storeGet(key), expected)) throw { tag: 'conflict' };
    }
    storeCommit(writes);
  },
};

// ---- the stand-ins ------------------------------------------------------------------

let fakes = null;

/** Keeps the stand-ins' world (codes, tokens, mailbox) across a reload. */
function saveWorld() {
  try { localStorage.setItem(WORLD_KEY, fakes.snapshot()); } catch (_) { /* a full store costs a sign-in */ }
}

/** A thrown JSON error of the stand-ins as a value. */
function fakeError(err) {
  if (typeof err === 'string') {
    try { return JSON.parse(err); } catch (_) { return { tag: 'other', val: err }; }
  }
  return { tag: 'other', val: String(err && err.message || err) };
}

/** The SMTP server and port the store's destination record names, as the device host reads it. */
function smtpDestination() {
  const record = localStorage.getItem(STORE_PREFIX + SMTP_DESTINATION_KEY);
  if (record === null) return null;
  const text = new TextDecoder().decode(fromBase64(record));
  const colon = text.lastIndexOf(':');
  const port = Number(text.slice(colon + 1));
  if (colon < 0 || !Number.isInteger(port) || port < 1 || port > 65535) return null;
  return { host: text.slice(0, colon), port };
}

/** The SMTP connection resource of `net`, over one stand-in connection. */
class Connection {
  constructor(id) { this.id = id; }

  static connect(host, port) {
    const granted = smtpDestination();
    if (!granted || granted.host.toLowerCase() !== String(host).toLowerCase() || granted.port !== port) {
      throw { tag: 'denied', val: host + ':' + port };
    }
    try {
      const id = fakes.smtp_connect(host, port, clock.nowMs());
      return new Connection(id);
    } catch (err) { throw fakeError(err); }
  }

  read(max, timeoutMs) {
    try { return fakes.smtp_read(this.id, max, timeoutMs); } catch (err) { throw fakeError(err); } finally { saveWorld(); }
  }

  write(data, _timeoutMs) {
    try { fakes.smtp_write(this.id, data, clock.nowMs()); } catch (err) { throw fakeError(err); } finally { saveWorld(); }
  }

  startTls(serverName, _timeoutMs) {
    try { fakes.smtp_start_tls(this.id, serverName); } catch (err) { throw fakeError(err); }
  }

  [Symbol.dispose]() { fakes.smtp_close(this.id); }
}

const net = {
  httpRequest(req) {
    const url = String(req.url);
    // Only the identity platform is granted, as on the device.
    if (!url.startsWith(AUTHORITY + '/')) {
      let origin = url;
      try { origin = new URL(url).origin; } catch (_) { /* named as given */ }
      throw { tag: 'denied', val: origin };
    }
    const method = req.method === 'post' ? 'POST' : 'GET';
    const answer = JSON.parse(fakes.http_request(method, url.slice(AUTHORITY.length), JSON.stringify(req.headers), req.body, clock.nowMs()));
    saveWorld();
    return { status: answer.status, headers: answer.headers.map(([k, v]) => [k, v]), body: fromBase64(answer['body-base64']) };
  },
  ehloName() { return '[127.0.0.1]'; },
  smtpTimeoutDivisor() { return 1; },
  Connection,
};

const config = {
  authority() { return AUTHORITY; },
  tenantOverride() { return undefined; },
  clientIdOverride() { return undefined; },
};

// ---- attachments: the files of the send in progress -----------------------------------

let currentFiles = [];
let bytesRead = 0;

const attachments = {
  info(id) {
    const file = currentFiles[id];
    if (!file) throw { tag: 'not-found', val: id };
    return { fileName: file.name, size: BigInt(file.bytes.length) };
  },
  read(id, offset, max) {
    const file = currentFiles[id];
    if (!file) throw { tag: 'not-found', val: id };
    const start = Math.min(Number(offset), file.bytes.length);
    const chunk = file.bytes.slice(start, Math.min(file.bytes.length, start + max));
    bytesRead += chunk.length;
    return chunk;
  },
};

// ---- the component --------------------------------------------------------------------

const modules = new Map();

function getCoreModule(path) {
  if (!modules.has(path)) {
    modules.set(path, WebAssembly.compileStreaming(fetch(new URL('./component/' + path, import.meta.url))));
  }
  return modules.get(path);
}

/**
 * The relay's side of a nearby device's connection (`wit/relay.wit`): the page listens on
 * no socket, so it never hands the component one; the component's world names the
 * interface, so the instance needs it all the same.
 */
const relayClient = {
  ClientConnection: class ClientConnection {
    constructor() { throw new Error('The preview runs no relay.'); }
  },
  now: () => BigInt(clock.now()),
};

const imports = {
  'mfp:smtp-oauth/store': store,
  'mfp:smtp-oauth/net': net,
  'mfp:smtp-oauth/config': config,
  'mfp:smtp-oauth/attachments': attachments,
  'mfp:smtp-oauth/relay-client': relayClient,
  './random.js': { random },
};

/**
 * How long the instantiations of the component took in this page (one per call, as on the
 * device), for the figures the browser tests report beside wasmtime's.
 */
export const instantiationTimes = [];

/** A fresh instance of the component, timed. */
async function freshInstance() {
  const start = performance.now();
  const root = await instantiate(getCoreModule, imports);
  instantiationTimes.push(performance.now() - start);
  return root;
}

/** Runs `call` on a fresh instance of the component. */
async function withComponent(call) {
  const root = await freshInstance();
  return call(root);
}

// ---- the mapping of WIT records to JSON (views.rs, web panel) --------------------------

const big = (n) => (typeof n === 'bigint' ? Number(n) : n);
const opt = (v, f) => (v === undefined || v === null ? null : (f ? f(v) : v));

export const views = {
  diagnostic: (d) => ({
    code: d.code,
    severity: d.severity,
    message: d.message,
    remedy: d.remedy.webPanel,
    field: opt(d.field),
    fix: opt(d.fix, views.fix),
  }),
  fix: (f) => ({ label: f.label, changes: Object.fromEntries(f.changes.map((c) => [c.key, c.value])) }),
  diagnostics: (list) => list.map(views.diagnostic),
  setting: (e) => ({ key: e.key, value: e.value, locked: opt(e.locked) }),
  applyOutcome: (o) => ({ settings: o.settings.map(views.setting), notices: views.diagnostics(o.notices), diagnostics: views.diagnostics(o.diagnostics) }),
  controlPanel: (v) => ({
    'service-provider': v.serviceProvider,
    'smtp-server': v.smtpServer,
    'send-port': String(v.sendPort),
    'receive-port': String(v.receivePort),
    'login-credentials': v.loginCredentials,
    'smtp-edits-enabled': v.smtpEditsEnabled,
    notice: opt(v.notice),
  }),
  account: (a) => ({ username: a.username, upn: a.upn, email: opt(a.email), 'tenant-id': a.tenantId, personal: a.personal }),
  deviceCode: (c) => ({
    'user-code': c.userCode,
    'verification-uri': c.verificationUri,
    'expires-at': big(c.expiresAt),
    interval: c.interval,
    message: c.message,
    problem: opt(c.problem, views.diagnostic),
  }),
  signedIn: (s) => ({ account: views.account(s.account), 'access-token-expires-at': big(s.accessTokenExpiresAt), warnings: views.diagnostics(s.warnings) }),
  authState: (s) => {
    switch (s.tag) {
      case 'signed-out': return { code: 'signed-out' };
      case 'in-progress': return { code: 'sign-in-in-progress', ...views.deviceCode(s.val.deviceCode), ...opt(s.val.stillSignedIn, views.signedIn) };
      case 'signed-in': return { code: 'signed-in', ...views.signedIn(s.val) };
      default: return { code: 'sign-in-failed', diagnosis: views.diagnostic(s.val.diagnosis), 'failed-at': big(s.val.failedAt), ...opt(s.val.stillSignedIn, views.signedIn) };
    }
  },
  consent: (c) => ({ url: c.url, needed: c.needed, explanation: c.explanation }),
  sendReport: (r, attempts) => ({ code: 'sent', 'message-id': r.messageId, accepted: r.accepted, 'server-reply': r.serverReply, size: big(r.size), attempts }),
  retry: (r) => ({
    diagnosis: views.diagnostic(r.failure.diagnosis),
    'server-reply': opt(r.failure.serverReply),
    'after-seconds': r.afterSeconds,
    'next-attempt': r.nextAttempt,
    'max-attempts': r.maxAttempts,
  }),
  event: (e) => ({
    kind: e.kind,
    at: big(e.at),
    succeeded: e.succeeded,
    summary: e.summary,
    diagnosis: opt(e.diagnosis, views.diagnostic),
    'server-reply': opt(e.serverReply),
    origin: opt(e.origin),
  }),
};

// ---- failures as the device API answers them (failure.rs, api.rs) ---------------------

/** An error the panel handles as it handles the device's: `status`, `error`, `body`. */
class PreviewError extends Error {
  constructor(status, error, extra) {
    super(error.message);
    this.status = status;
    this.error = error;
    this.body = { error, ...(extra || {}) };
  }
}

function errorOf(code, message, remedy, field) {
  const error = { code, message, remedy };
  if (field !== undefined && field !== null) error.field = field;
  return error;
}

/** A panel refusal: 409 (500 for storage), every refused field in `errors`. */
function panelError(e) {
  const status = e.kind === 'storage' ? 500 : 409;
  const error = errorOf(e.code, e.message, e.remedy.webPanel, e.field);
  const extra = {};
  if (e.field !== undefined || e.more.length) {
    extra.errors = [error, ...e.more.map((m) => errorOf(m.code, m.message, m.remedy.webPanel, m.field))];
  }
  return new PreviewError(status, error, extra);
}

/** A sign-in failure: 422 with the diagnosis (500 for storage). */
function signinError(e) {
  const d = e.tag === 'refused' ? e.val.diagnosis : e.val;
  return new PreviewError(e.tag === 'storage' ? 500 : 422, errorOf(d.code, d.message, d.remedy.webPanel));
}

/** A send failure: 422 with the diagnosis, its field and the server's reply. */
function sendFailure(e) {
  const failure = e.tag === 'retry-later' ? e.val.failure : e.tag === 'failed' ? e.val : { diagnosis: e.val, serverReply: undefined };
  const d = failure.diagnosis;
  const error = errorOf(d.code, d.message, d.remedy.webPanel, d.field);
  const extra = { 'server-reply': opt(failure.serverReply) };
  if (d.field !== undefined) extra.errors = [error];
  return { status: 422, body: { error, ...extra } };
}

/** A trap or an instantiation failure: the device's 500. */
function componentFailure(err) {
  return new PreviewError(500, errorOf('component-trap', 'The component trapped: ' + (err && err.message || err),
    'Report the component as faulty; the next call uses a fresh instance.'));
}

/** Calls `call` on a fresh instance; a thrown WIT error goes through `mapError`. */
async function callComponent(call, mapError) {
  let root;
  try {
    root = await freshInstance();
  } catch (err) { throw componentFailure(err); }
  try {
    return call(root);
  } catch (err) {
    if (err instanceof Error) throw componentFailure(err);
    throw mapError(err);
  }
}

const panelCall = (call) => callComponent((root) => call(root.panel), panelError);
const signinCall = (call) => callComponent((root) => call(root.signin), signinError);

// ---- the sign-in timer: the page owns it, as the host does on the device ---------------

const signinTimer = {
  generation: 0,
  cancel() { this.generation += 1; },
  /** Polls when the component says, until the sign-in ends or another one starts. */
  async run(firstAt) {
    const generation = ++this.generation;
    let at = firstAt;
    for (;;) {
      await waitUntil(at);
      if (generation !== this.generation) return;
      let status;
      try {
        status = await signinCall((s) => s.poll(BigInt(clock.now())));
      } catch (_) {
        at = clock.now() + 5;
        continue;
      }
      if (generation !== this.generation) return;
      if (status.tag === 'pending') at = Math.max(big(status.val), clock.now() + 1);
      else if (status.tag === 'pending-unreachable') at = Math.max(big(status.val.nextPollAt), clock.now() + 1);
      else return;
    }
  },
};

// ---- the backend the panel (app.js) talks to ---------------------------------------------

/** The walk-up user of a send, as the API takes `user` and `ldap-search`. */
function walkUpUser(message) {
  if (message.user === 'guest') return 'guest';
  if (message.user === 'authenticated') return message['ldap-search'] === 'failed' ? 'authenticated-ldap-failed' : 'authenticated-ldap-succeeded';
  return 'unauthenticated';
}

export const backend = {
  kind: 'preview',
  /** The page shows its own approval panel: the verification page is not opened. */
  opensVerificationPage: false,
  now: () => clock.nowMs() / 1000,

  getSmtp: () => panelCall((p) => ({ settings: p.settings().map(views.setting), diagnostics: views.diagnostics(p.diagnostics()) })),
  applySmtp: (changes) => panelCall((p) => views.applyOutcome(p.apply('web-panel', Object.entries(changes).map(([key, value]) => ({ key, value: String(value) })), BigInt(clock.now())))),
  getControlPanel: () => panelCall((p) => views.controlPanel(p.controlPanelView())),
  applyControlPanel: (changes) => panelCall((p) => views.applyOutcome(p.apply('control-panel', Object.entries(changes).map(([key, value]) => ({ key, value: String(value) })), BigInt(clock.now())))),
  getDiagnostics: () => panelCall((p) => views.diagnostics(p.diagnostics())),
  getHistory: () => panelCall((p) => p.history().map(views.event)),
  /** The preview runs in the page and listens on no socket: its relay never runs. */
  getRelay: async () => ({ listening: false }),
  getAdminConsent: () => signinCall((s) => views.consent(s.adminConsent())),

  async signinStart() {
    signinTimer.cancel();
    const code = await signinCall((s) => s.start(BigInt(clock.now())));
    const view = views.deviceCode(code);
    signinTimer.run(clock.now() + view.interval);
    return view;
  },
  signinStatus: () => signinCall((s) => views.authState(s.status(BigInt(clock.now())))),
  async signinCancel() {
    signinTimer.cancel();
    await signinCall((s) => s.cancel());
  },
  async signOut() {
    signinTimer.cancel();
    await signinCall((s) => s.signOut());
  },
  async logout() { /* the preview has no administrator login */ },

  /**
   * Sends as the device's send loop does (host/src/frontend/send_loop.rs): when the
   * component answers `retry-later`, waits what it says on the device's clock and sends
   * again with the attempt it names. `onEvent(name, data)` gets the events of the device's
   * stream (`attempt`, `progress`, `retry`); the answer is its `result`.
   */
  async send(message, onEvent) {
    const started = performance.now();
    const files = message.attachments || [];
    const total = files.reduce((n, f) => n + f.bytes.length, 0);
    const outgoing = {
      to: message.to,
      from: message.from || undefined,
      user: walkUpUser(message),
      subject: message.subject ?? 'Test email',
      body: message.body ?? '',
      attachments: files.map((_, i) => i),
      attempt: 1,
    };
    let attempts = 0;
    const result = (status, body) => ({ status, body, attempts, 'elapsed-ms': Math.round(performance.now() - started) });
    for (;;) {
      attempts = outgoing.attempt;
      onEvent('attempt', { attempt: attempts });
      currentFiles = files;
      bytesRead = 0;
      let report;
      try {
        report = await callComponent((root) => root.mailer.send(outgoing, BigInt(clock.now())), (e) => e);
      } catch (err) {
        if (err instanceof PreviewError) return result(err.status, err.body);
        if (total) onEvent('progress', { 'bytes-read': bytesRead, total });
        if (err.tag === 'retry-later' && err.val.nextAttempt > outgoing.attempt) {
          onEvent('retry', views.retry(err.val));
          const at = clock.now() + err.val.afterSeconds;
          outgoing.attempt = err.val.nextAttempt;
          await waitUntil(at);
          continue;
        }
        const failure = sendFailure(err);
        return result(failure.status, failure.body);
      } finally {
        currentFiles = [];
      }
      if (total) onEvent('progress', { 'bytes-read': bytesRead, total });
      return result(200, views.sendReport(report, attempts));
    }
  },
};

// ---- start-up -----------------------------------------------------------------------------

/**
 * Loads the stand-ins (restoring their world from before a reload), compiles the
 * component's modules and resumes a sign-in left in progress. Answers the stand-ins.
 */
export async function start() {
  await initFakes({ module_or_path: new URL('./fakes/mfp_fakes_bg.wasm', import.meta.url) });
  fakes = new Fakes('manual-approval', VERIFICATION_URI, DEMO_INTERVAL);
  const saved = localStorage.getItem(WORLD_KEY);
  if (saved) fakes.restore(saved);
  saveWorld();
  await Promise.all(['mfp_smtp_oauth.core.wasm'].map(getCoreModule)).catch(() => {});
  const status = await backend.signinStatus().catch(() => null);
  if (status && status.code === 'sign-in-in-progress') signinTimer.run(clock.now());
  return {
    fakes,
    saveWorld,
    catalogue: JSON.parse(Fakes.catalogue()),
  };
}

/** Forgets everything the preview keeps in this browser (the device's store, the world, the clock). */
export function resetAll() {
  signinTimer.cancel();
  for (const key of Object.keys(localStorage)) if (key.startsWith(NAMESPACE)) localStorage.removeItem(key);
}

export { withComponent };
