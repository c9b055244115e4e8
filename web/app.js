// The CentreWare-style panel of mfp-smtp-oauth. Plain JavaScript, no build step.
// Every value, lock, notice and diagnosis comes from the device: this page decides
// nothing, it shows what the device says. It talks to a backend with one set of
// operations: the device's JSON API (web/API.md, `deviceBackend` below), or, in the
// browser preview (web/preview), the same component running in the page
// (`window.mfpBackend`), which answers in the same JSON shapes.
'use strict';

(function () {
  const PAGES = ['smtp-general', 'from-address', 'device-details', 'admin-consent', 'diagnostics', 'history', 'send-test', 'control-panel'];
  const PROVIDER_NAMES = { 'not-selected': 'Not Selected', 'exchange-online': 'Exchange Online/Outlook.com' };
  const CREDENTIAL_NAMES = { system: 'System', 'remotely-authenticated-user': 'Remotely Authenticated User' };
  const SEVERITY_NAMES = { info: 'Information', warning: 'Warning', error: 'Error' };

  const state = {
    settings: {},        // key -> {value, locked}
    diagnostics: [],
    signin: null,        // GET /api/v1/signin
    controlPanel: null,  // GET /api/v1/control-panel
    pollTimer: null,
    countdownTimer: null,
    retryTimer: null,    // the countdown to a send's next attempt
    serverClock: null,   // {ms, at}: the device's clock (its last Date header), at performance.now() `at`
  };

  const $ = (id) => document.getElementById(id);

  // ---- API -------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, error, body) {
      super(error && error.message ? error.message : 'HTTP ' + status);
      this.status = status;
      this.error = error || { code: 'http-' + status, message: 'The device answered HTTP ' + status + '.', remedy: '' };
      this.body = body || {};
    }
  }

  async function api(method, path, body) {
    const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    noteServerClock(response);
    if (response.status === 401 && path !== '/api/v1/login') {
      window.location.assign('/login');
      throw new ApiError(401, { code: 'not-logged-in', message: 'Log in as system administrator.', remedy: '' });
    }
    let data = null;
    const text = await response.text();
    if (text) {
      try { data = JSON.parse(text); } catch (_) { data = null; }
    }
    if (!response.ok) {
      throw new ApiError(response.status, data && data.error, data);
    }
    return data;
  }

  /**
   * Keeps the device's time from an answer's Date header, so that countdowns to the
   * device's own deadlines (a code's `expires-at`) are right whatever this computer's
   * clock says; between answers it advances with performance.now(), which never jumps.
   */
  function noteServerClock(response) {
    const ms = Date.parse(response.headers.get('Date') || '');
    if (!Number.isNaN(ms)) state.serverClock = { ms, at: performance.now() };
  }

  /** The device's time now, in Unix seconds (this computer's clock until it answered). */
  function serverNow() {
    const c = state.serverClock;
    return c ? (c.ms + performance.now() - c.at) / 1000 : Date.now() / 1000;
  }

  /**
   * The device's JSON API as the panel's backend: one method per operation. A failure is
   * thrown as an ApiError (`status`, `error`, `body`); another backend throws the same shape.
   */
  const deviceBackend = {
    kind: 'device',
    /** [Open Authentication Page] opens the verification page in a new tab. */
    opensVerificationPage: true,
    now: serverNow,
    getSmtp: () => api('GET', '/api/v1/smtp'),
    applySmtp: (changes) => api('POST', '/api/v1/smtp', { changes }),
    getControlPanel: () => api('GET', '/api/v1/control-panel'),
    applyControlPanel: (changes) => api('POST', '/api/v1/control-panel', { changes }),
    getDiagnostics: () => api('GET', '/api/v1/diagnostics'),
    getHistory: () => api('GET', '/api/v1/history'),
    /** The relay's state: `{listening: false}`, or where it listens, who may use it, the last messages. */
    getRelay: () => api('GET', '/api/v1/relay'),
    getAdminConsent: () => api('GET', '/api/v1/admin-consent'),
    signinStart: () => api('POST', '/api/v1/signin'),
    signinStatus: () => api('GET', '/api/v1/signin'),
    signinCancel: () => api('POST', '/api/v1/signin/cancel'),
    signOut: () => api('DELETE', '/api/v1/signin'),
    logout: () => api('POST', '/api/v1/logout'),
    /**
     * Posts the test email asking for the device's event stream: `onEvent(name, data)` for
     * each `attempt`, `progress` and `retry`; answers the `result` event's
     * `{status, body, attempts, elapsed-ms}` (or a plain refusal's status and body).
     * `message.attachments` are `{name, bytes}`.
     */
    async send(message, onEvent) {
      const body = { ...message, attachments: message.attachments.map((a) => ({ name: a.name, 'data-base64': bytesToBase64(a.bytes) })) };
      const response = await fetch('/api/v1/send', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { Accept: 'text/event-stream', 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
      if (response.status === 401) {
        window.location.assign('/login');
        return null;
      }
      // A request refused before the send began (malformed input, CSRF) is plain JSON.
      if (!(response.headers.get('Content-Type') || '').includes('text/event-stream')) {
        let data = null;
        try { data = JSON.parse(await response.text()); } catch (_) { data = null; }
        return { status: response.status, body: data };
      }
      let result = null;
      await readEvents(response, (name, data) => {
        if (name === 'result') result = data;
        else onEvent(name, data);
      });
      if (!result) throw new Error('the answer ended before the result');
      return result;
    },
  };

  const backend = window.mfpBackend || deviceBackend;

  // ---- small DOM helpers -------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null) continue;
      if (name === 'class') node.className = value;
      else if (name === 'text') node.textContent = value;
      else node.setAttribute(name, value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child);
    }
    return node;
  }

  /**
   * A remedy's text with each https:// URL in it as a link (in a new tab), so that an
   * administrator can follow it (the admin-consent URL, a Microsoft page); the rest stays
   * text. Punctuation that ends the sentence is not part of the URL, nor is a closing
   * parenthesis that the URL did not open.
   */
  function withLinks(text) {
    const nodes = [];
    let rest = String(text || '');
    for (;;) {
      const start = rest.indexOf('https://');
      if (start < 0) break;
      let url = /^https:\/\/[^\s<>"']*/.exec(rest.slice(start))[0];
      for (;;) {
        const last = url.slice(-1);
        const unopened = last === ')' && url.split('(').length < url.split(')').length;
        if (!unopened && !'.,;:!?'.includes(last)) break;
        url = url.slice(0, -1);
      }
      if (start > 0) nodes.push(rest.slice(0, start));
      nodes.push(url.length > 'https://'.length
        ? el('a', { href: url, target: '_blank', rel: 'noopener noreferrer', 'data-testid': 'remedy-link', text: url })
        : url);
      rest = rest.slice(start + url.length);
    }
    if (rest) nodes.push(rest);
    return nodes;
  }

  /**
   * Copies text to the clipboard: with the Clipboard API where the page may use it (a
   * secure context, such as the panel on loopback or behind HTTPS), else through a
   * selected, hidden text field and the copy command (the panel on a plain-HTTP address).
   */
  async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(text);
        return true;
      } catch (_) { /* not allowed: the copy command may be */ }
    }
    const buffer = el('textarea', { class: 'copy-buffer', readonly: '', 'aria-hidden': 'true', tabindex: '-1' });
    buffer.value = text;
    document.body.append(buffer);
    buffer.select();
    let copied = false;
    try { copied = document.execCommand('copy'); } catch (_) { copied = false; }
    buffer.remove();
    return copied;
  }

  /**
   * A copy button: copies the text of the element its `data-copy` names and says so
   * beside it; when the browser allows neither way, it selects the text for Ctrl+C.
   */
  async function copyFrom(button) {
    const source = $(button.dataset.copy);
    const feedback = $(button.dataset.copyFeedback);
    const text = (source.textContent || '').trim();
    const copied = text !== '' && await copyText(text);
    button.focus();
    if (!copied && text) window.getSelection().selectAllChildren(source);
    feedback.textContent = copied ? 'Copied.' : 'Could not copy: the text is selected; press Ctrl+C to copy it.';
    clearTimeout(feedback.clearTimer);
    feedback.clearTimer = setTimeout(() => { feedback.textContent = ''; }, 5000);
  }

  /**
   * One diagnosis (code, severity, message, remedy) as a list item; with a `fix` (a
   * settings change the component offers), a button that applies it as one Apply.
   */
  function diagnosisItem(d, testid) {
    const severity = d.severity || 'info';
    const fix = d.fix && d.fix.changes ? el('button', { type: 'button', class: 'fix', 'data-testid': 'fix', text: d.fix.label }) : null;
    if (fix) fix.addEventListener('click', () => applyFix(fix, d.fix));
    return el('li', { class: 'diag ' + severity, 'data-code': d.code, 'data-field': d.field, 'data-testid': testid || 'diagnosis' },
      el('span', { class: 'severity', text: SEVERITY_NAMES[severity] || severity }),
      ' ',
      el('span', { class: 'message', text: d.message }),
      d.remedy ? el('div', { class: 'remedy' }, el('strong', { text: 'Remedy: ' }), ...withLinks(d.remedy)) : null,
      fix ? el('div', { class: 'button-row' }, fix) : null);
  }

  /** Applies a diagnosis's fix through the form it is shown in (the SMTP form elsewhere). */
  function applyFix(button, fix) {
    const form = button.closest('form') || $('smtp-form');
    const notices = form.querySelector('ul.notices') || $('smtp-notices');
    clearRefusals(form);
    applyChanges(form, notices, fix.changes);
  }

  /** The setting keys a form edits (its radio groups and keyed inputs). */
  function fieldsOf(form) {
    const keys = new Set();
    for (const input of form.querySelectorAll('input')) {
      if (input.type === 'radio') keys.add(input.name);
      else if (input.dataset.key) keys.add(input.dataset.key);
    }
    return keys;
  }

  /** The diagnoses about one of a form's fields, as the component marks them (`field`). */
  function aboutFormFields(all, form) {
    const keys = fieldsOf(form);
    return all.filter((d) => d.field && keys.has(d.field));
  }

  function fillList(list, diagnoses, testid) {
    list.replaceChildren(...(diagnoses || []).map((d) => diagnosisItem(d, testid)));
  }

  /** Replaces a node's children, leaving out the absent ones (null, undefined, false). */
  function put(node, ...children) {
    node.replaceChildren(...children.filter((c) => c !== null && c !== undefined && c !== false));
  }

  function showBanner(text) {
    const banner = $('banner');
    banner.textContent = text;
    banner.hidden = !text;
  }

  /**
   * The control a setting key names in a form: its radio group (which carries the group's
   * invalid state for assistive technology), else its input; on Send Test Email, the
   * input of the message field (`data-message-field`, which may list several names).
   */
  function controlFor(form, key) {
    const selector = '[data-group="' + CSS.escape(key) + '"], [data-key="' + CSS.escape(key) + '"], [data-message-field~="' + CSS.escape(key) + '"]';
    return form.querySelector(selector);
  }

  /** The element that takes focus for a control: a group's checked (else first enabled) radio. */
  function focusTarget(control) {
    if (!control.dataset.group) return control.disabled ? null : control;
    const radios = [...control.querySelectorAll('input[type=radio]')].filter((r) => !r.disabled);
    return radios.find((r) => r.checked) || radios[0] || null;
  }

  function addToken(node, attribute, token) {
    const tokens = (node.getAttribute(attribute) || '').split(/\s+/).filter(Boolean);
    if (!tokens.includes(token)) tokens.push(token);
    node.setAttribute(attribute, tokens.join(' '));
  }

  function removeToken(node, attribute, token) {
    const tokens = (node.getAttribute(attribute) || '').split(/\s+/).filter((t) => t && t !== token);
    if (tokens.length) node.setAttribute(attribute, tokens.join(' '));
    else node.removeAttribute(attribute);
  }

  /** Clears the refusals shown in a form, and the invalid marks they put on its fields. */
  function clearRefusals(form) {
    for (const node of form.querySelectorAll('[aria-invalid]')) {
      node.removeAttribute('aria-invalid');
      for (const refusal of form.querySelectorAll('.refusal[id]')) removeToken(node, 'aria-describedby', refusal.id);
    }
    for (const node of form.querySelectorAll('.refusal')) {
      node.hidden = true;
      node.replaceChildren();
    }
  }

  /**
   * Shows each refusal of one Apply next to the field it names (`errors` when the device
   * lists every invalid field, else the single `error`), or at the bottom of the form; marks
   * those fields invalid, described by their refusal, and moves focus to the first of them.
   */
  function showRefusal(form, err) {
    clearRefusals(form);
    const errors = err.body && Array.isArray(err.body.errors) && err.body.errors.length
      ? err.body.errors
      : [err.error || {}];
    const invalid = [];
    for (const e of errors) {
      let target = null;
      if (e && e.field) target = form.querySelector('[data-refusal-for="' + CSS.escape(e.field) + '"]');
      if (!target) target = form.querySelector('[data-refusal-for=""]');
      target.append(el('div', { class: 'refusal-message', 'data-testid': 'refusal-message', 'data-code': e.code, text: e.message }));
      if (e.remedy) target.append(el('div', { class: 'remedy', 'data-testid': 'refusal-remedy' }, el('strong', { text: 'Remedy: ' }), ...withLinks(e.remedy)));
      target.hidden = false;
      const control = target.dataset.refusalFor ? controlFor(form, target.dataset.refusalFor) : null;
      if (control) {
        control.setAttribute('aria-invalid', 'true');
        addToken(control, 'aria-describedby', target.id);
        invalid.push(control);
      }
    }
    // The first invalid field in the form's own order, whatever order the device listed them in.
    invalid.sort((a, b) => (a.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING ? -1 : 1));
    const first = invalid.map(focusTarget).find(Boolean);
    if (first) first.focus();
  }

  // ---- settings -------------------------------------------------------------------

  function setSettings(list) {
    state.settings = {};
    for (const entry of list || []) state.settings[entry.key] = { value: entry.value, locked: entry.locked || null };
    renderSettings();
  }

  function value(key) {
    return state.settings[key] ? state.settings[key].value : '';
  }

  function renderLock(key, inputs) {
    const locked = state.settings[key] ? state.settings[key].locked : null;
    for (const input of inputs) input.disabled = !!locked;
    for (const node of document.querySelectorAll('[data-locked-for="' + CSS.escape(key) + '"]')) {
      node.textContent = locked ? locked : '';
      node.hidden = !locked;
    }
  }

  function renderRadio(name) {
    const inputs = document.querySelectorAll('input[type=radio][name="' + CSS.escape(name) + '"]');
    for (const input of inputs) input.checked = input.value === value(name);
    renderLock(name, inputs);
  }

  function renderInput(input) {
    const key = input.dataset.key;
    if (input.type === 'checkbox') input.checked = value(key) === 'yes';
    else input.value = value(key);
    renderLock(key, [input]);
  }

  function renderSettings() {
    for (const name of ['service-provider', 'login-credentials', 'from.guest-edit', 'from.auth-send-despite-ldap-failure', 'from.edit-without-auth']) {
      renderRadio(name);
    }
    for (const input of document.querySelectorAll('form input[data-key]')) renderInput(input);
    $('provider-note').hidden = value('service-provider') !== 'exchange-online';
  }

  /** The changes a form holds compared with the device's current values. */
  function changesOf(form) {
    const changes = {};
    for (const input of form.querySelectorAll('input')) {
      if (input.disabled) continue;
      let key = null;
      let v = null;
      if (input.type === 'radio') {
        if (!input.checked) continue;
        key = input.name;
        v = input.value;
      } else if (input.type === 'checkbox') {
        key = input.dataset.key;
        v = input.checked ? 'yes' : 'no';
      } else if (input.dataset.key) {
        key = input.dataset.key;
        v = input.value.trim();
      }
      if (key && key in state.settings && state.settings[key].value !== v) changes[key] = v;
    }
    return changes;
  }

  async function applyForm(form, noticeList) {
    clearRefusals(form);
    noticeList.replaceChildren();
    const changes = changesOf(form);
    if (Object.keys(changes).length === 0) {
      noticeList.replaceChildren(el('li', { class: 'diag info', 'data-testid': 'notice', text: 'There are no changes to apply.' }));
      return;
    }
    await applyChanges(form, noticeList, changes);
  }

  async function applyChanges(form, noticeList, changes) {
    const submit = form.querySelector('button[type=submit]');
    submit.disabled = true;
    try {
      const outcome = await backend.applySmtp(changes);
      setSettings(outcome.settings);
      // The Apply's answer carries the findings that follow from it.
      if (Array.isArray(outcome.diagnostics)) setDiagnostics(outcome.diagnostics);
      const notices = outcome.notices || [];
      if (notices.length) fillList(noticeList, notices, 'notice');
      else noticeList.replaceChildren(el('li', { class: 'diag info applied', 'data-testid': 'notice-applied', text: 'The settings have been applied.' }));
      await refreshAll();
    } catch (err) {
      if (err.status === 401) return;
      showRefusal(form, err);
    } finally {
      submit.disabled = false;
    }
  }

  async function loadSettings() {
    const view = await backend.getSmtp();
    setSettings(view.settings);
    if (Array.isArray(view.diagnostics)) setDiagnostics(view.diagnostics);
  }

  // ---- diagnostics ------------------------------------------------------------------

  function setDiagnostics(list) {
    state.diagnostics = list || [];
    renderDiagnostics();
  }

  function allWarnings() {
    const seen = new Set();
    const out = [];
    const signinWarnings = (state.signin && state.signin.warnings) || [];
    for (const d of [...state.diagnostics, ...signinWarnings]) {
      const key = d.code + '\u0000' + d.message;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(d);
    }
    return out;
  }

  function renderDiagnostics() {
    const all = allWarnings();
    const body = $('diagnostics-body');
    body.replaceChildren(...all.map((d) => el('tr', { class: 'diag ' + (d.severity || 'info'), 'data-code': d.code, 'data-testid': 'diagnostic-row' },
      el('td', { class: 'severity', 'data-label': 'Severity', text: SEVERITY_NAMES[d.severity] || d.severity }),
      el('td', { class: 'message', 'data-label': 'Message', text: d.message }),
      el('td', { class: 'remedy', 'data-label': 'Remedy' }, ...withLinks(d.remedy)))));
    $('diagnostics-table').hidden = all.length === 0;
    $('diagnostics-none').hidden = all.length !== 0;

    // Each page shows the findings about its own fields, with their fixes.
    fillList($('from-warnings'), aboutFormFields(all, $('from-form')), 'from-warning');
    fillList($('device-warnings'), aboutFormFields(all, $('device-form')), 'device-warning');

    const count = all.filter((d) => d.severity === 'error' || d.severity === 'warning').length;
    const nav = document.querySelector('[data-page="diagnostics"]');
    nav.textContent = count ? 'Diagnostics (' + count + ')' : 'Diagnostics';
  }

  async function loadDiagnostics() {
    setDiagnostics(await backend.getDiagnostics());
  }

  // ---- admin consent -----------------------------------------------------------------

  async function loadConsent() {
    const consent = await backend.getAdminConsent();
    const link = $('consent-url');
    link.textContent = consent.url || '';
    if (consent.url) link.href = consent.url; else link.removeAttribute('href');
    const needed = $('consent-needed');
    needed.textContent = consent.needed
      ? 'Administrator consent is needed (once for each tenant).'
      : 'Administrator consent is not needed.';
    needed.className = 'consent-needed ' + (consent.needed ? 'needed' : 'not-needed');
    needed.dataset.needed = String(!!consent.needed);
    $('consent-explanation').textContent = consent.explanation || '';
  }

  // ---- confirmations -------------------------------------------------------------------

  /**
   * Asks in the page's own dialog rather than window.confirm, so that it looks like the
   * panel and a test can drive it: true for the confirming button, false for Cancel or Escape.
   */
  function confirmDialog(title, message, confirmLabel) {
    const dialog = $('confirm-dialog');
    if (dialog.open) return Promise.resolve(false);
    $('confirm-title').textContent = title;
    $('confirm-message').textContent = message;
    $('confirm-ok').textContent = confirmLabel;
    dialog.returnValue = '';
    return new Promise((resolve) => {
      dialog.addEventListener('close', () => resolve(dialog.returnValue === 'confirm'), { once: true });
      dialog.showModal();
    });
  }

  function accountName(account) {
    return account.username || account.upn || account.email || '';
  }

  // ---- sign-in (Open Authentication Page) -------------------------------------------

  function stopPolling() {
    if (state.pollTimer) clearInterval(state.pollTimer);
    if (state.countdownTimer) clearInterval(state.countdownTimer);
    state.pollTimer = null;
    state.countdownTimer = null;
  }

  function showDeviceCode(code) {
    $('device-code').hidden = false;
    if ($('user-code').textContent !== (code['user-code'] || '')) $('copy-user-code-feedback').textContent = '';
    $('user-code').textContent = code['user-code'] || '';
    const link = $('verification-uri');
    link.textContent = code['verification-uri'] || '';
    link.href = code['verification-uri'] || '#';
    // Microsoft's message names the page and the code that the panel shows itself: it is
    // shown only when it says something more.
    const message = $('device-code-message');
    const words = code.message || '';
    message.textContent = words;
    message.hidden = !words || (words.includes(code['user-code'] || '\u0000') && words.includes(code['verification-uri'] || '\u0000'));
    const expiresAt = Number(code['expires-at']) || 0;
    $('countdown').dataset.expiresAt = String(expiresAt);
    tickCountdown();
    if (state.countdownTimer) clearInterval(state.countdownTimer);
    state.countdownTimer = setInterval(tickCountdown, 1000);
  }

  function tickCountdown() {
    const node = $('countdown');
    const left = Math.max(0, Math.floor(Number(node.dataset.expiresAt) - backend.now()));
    node.textContent = String(Math.floor(left / 60)).padStart(2, '0') + ':' + String(left % 60).padStart(2, '0');
  }

  function startPolling() {
    if (state.pollTimer) clearInterval(state.pollTimer);
    state.pollTimer = setInterval(pollSignin, 2000);
  }

  async function pollSignin() {
    try {
      const status = await backend.signinStatus();
      const before = state.signin && state.signin.code;
      renderSignin(status);
      if (status.code !== 'sign-in-in-progress') {
        stopPolling();
        if (before === 'sign-in-in-progress') await refreshAll();
      }
    } catch (err) {
      if (err.status === 401) stopPolling();
    }
  }

  function renderSignin(status) {
    state.signin = status;
    const stateLine = $('signin-state');
    const outcome = $('signin-outcome');
    stateLine.dataset.code = status.code;
    // An account stays signed in during, and after a failure of, another sign-in.
    $('sign-out').hidden = !status.account;
    // A sign-in in progress can be called off; an account signed in before stays.
    $('cancel-signin').hidden = status.code !== 'sign-in-in-progress';
    const account = status.account || {};
    switch (status.code) {
      case 'signed-in':
        stateLine.textContent = 'Signed in as ' + (account.username || account.upn) + '.';
        $('device-code').hidden = true;
        put(outcome,
          el('p', { class: 'success', 'data-testid': 'signin-success', text: 'Sign-in succeeded. The email address of the signed-in account has been set as the Device Email Address.' }),
          el('table', { class: 'account-table', 'data-testid': 'signin-account' },
            el('tr', {}, el('th', { text: 'Account' }), el('td', { text: account.username || '' })),
            el('tr', {}, el('th', { text: 'UPN' }), el('td', { text: account.upn || '' })),
            el('tr', {}, el('th', { text: 'Primary Email Address' }), el('td', { text: account.email || '' })),
            el('tr', {}, el('th', { text: 'Account Type' }), el('td', { text: account.personal ? 'Outlook.com (personal Microsoft account)' : 'Work or school (Microsoft Entra ID)' }))),
          (status.warnings && status.warnings.length) ? el('ul', { class: 'diagnostics', 'data-testid': 'signin-warnings' }, ...status.warnings.map((d) => diagnosisItem(d, 'signin-warning'))) : null);
        outcome.hidden = false;
        break;
      case 'sign-in-in-progress':
        stateLine.textContent = 'Waiting for the sign-in on the authentication page…' +
          (status.account ? ' ' + (account.username || account.upn) + ' stays signed in until then.' : '');
        showDeviceCode(status);
        outcome.hidden = true;
        break;
      case 'sign-in-failed': {
        stateLine.textContent = 'The sign-in failed.' +
          (status.account ? ' ' + (account.username || account.upn) + ' is still signed in.' : '');
        $('device-code').hidden = true;
        const d = status.diagnosis || {};
        outcome.replaceChildren(el('ul', { class: 'diagnostics', 'data-testid': 'signin-failure' }, diagnosisItem({ severity: 'error', ...d }, 'signin-diagnosis')));
        outcome.hidden = false;
        break;
      }
      default:
        stateLine.textContent = 'Not signed in.';
        $('device-code').hidden = true;
        outcome.hidden = true;
    }
    renderDiagnostics();
  }

  async function loadSignin() {
    const status = await backend.signinStatus();
    renderSignin(status);
    if (status.code === 'sign-in-in-progress' && !state.pollTimer) startPolling();
    if (status.code !== 'sign-in-in-progress') stopPolling();
  }

  /**
   * A new tab for the verification page, opened blank while the click still counts as the
   * administrator's (a tab opened once the code has arrived would be blocked as a
   * pop-up); null when the browser blocked it anyway. It gets no handle on the panel.
   */
  function openAuthTab() {
    const tab = window.open('', '_blank');
    if (!tab) return null;
    tab.opener = null;
    try {
      tab.document.title = 'Open Authentication Page';
      tab.document.body.textContent = 'Waiting for the device code…';
    } catch (_) { /* only a courtesy while the code is requested */ }
    return tab;
  }

  /** Sends the tab to the verification page; if there is no tab, says where the page is. */
  function showAuthTab(tab, uri) {
    const blocked = $('auth-tab-blocked');
    if (tab && !tab.closed && uri) {
      tab.location.href = uri;
      blocked.hidden = true;
      return;
    }
    if (tab) tab.close();
    const link = $('auth-tab-link');
    link.textContent = uri || '';
    link.href = uri || '#';
    blocked.hidden = !uri;
  }

  async function openAuthenticationPage() {
    const before = state.signin || {};
    // A new sign-in while an account is signed in is asked for first: it starts a code
    // that another account may complete.
    if (before.account) {
      const name = accountName(before.account);
      const go = await confirmDialog('Open Authentication Page',
        'The device is signed in as ' + name + '. Start a new sign-in? ' + name +
        ' stays signed in until the new sign-in succeeds.', 'Open Authentication Page');
      if (!go) return;
    }
    const button = $('open-auth');
    button.disabled = true;
    $('signin-outcome').hidden = true;
    // The preview shows its own approval panel instead of a tab.
    const tab = backend.opensVerificationPage ? openAuthTab() : null;
    try {
      const code = await backend.signinStart();
      // The account signed in before stays signed in (and shown) while the new sign-in runs.
      const kept = before.account ? { account: before.account, warnings: before.warnings } : {};
      renderSignin({ code: 'sign-in-in-progress', ...kept, ...code });
      startPolling();
      if (backend.opensVerificationPage) showAuthTab(tab, code['verification-uri']);
    } catch (err) {
      if (tab) tab.close();
      if (err.status === 401) return;
      if (!err.error) throw err;
      const outcome = $('signin-outcome');
      outcome.replaceChildren(el('ul', { class: 'diagnostics', 'data-testid': 'signin-failure' },
        diagnosisItem({ severity: 'error', ...err.error }, 'signin-diagnosis')));
      outcome.hidden = false;
    } finally {
      button.disabled = false;
    }
  }

  /** Cancels the sign-in in progress; the device keeps any account signed in before. */
  async function cancelSignin() {
    try {
      await backend.signinCancel();
      stopPolling();
      await refreshAll();
    } catch (err) {
      if (err.status !== 401) showBanner(err.error.message);
    }
  }

  async function signOut() {
    const account = state.signin && state.signin.account;
    const name = account ? accountName(account) : 'the signed-in account';
    const go = await confirmDialog('Sign Out',
      'Sign out ' + name + '? To send email through Exchange Online/Outlook.com again, click [Open Authentication Page] and sign in.',
      'Sign Out');
    if (!go) return;
    try {
      await backend.signOut();
      stopPolling();
      await refreshAll();
    } catch (err) {
      if (err.status !== 401) showBanner(err.error.message);
    }
  }

  // ---- send test email -----------------------------------------------------------------

  /** Bytes as base64 (the API's `data-base64`), in chunks that fit an argument list. */
  function bytesToBase64(bytes) {
    let text = '';
    for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(text);
  }

  /** A size as the component writes it in the history (1 kB = 1000 bytes). */
  function formatBytes(n) {
    const bytes = Number(n) || 0;
    if (bytes < 1000) return bytes + ' bytes';
    if (bytes < 1e6) return (bytes / 1e3).toFixed(1) + ' kB';
    return (bytes / 1e6).toFixed(1) + ' MB';
  }

  /** A duration in seconds: tenths below 10 s, whole seconds above. */
  function formatSeconds(ms) {
    const s = Math.max(0, Number(ms) || 0) / 1000;
    return (s < 10 ? s.toFixed(1) : String(Math.round(s))) + ' s';
  }

  /**
   * Reads a Server-Sent Events body as it arrives and calls `onEvent(name, data)` for each
   * event whose data is JSON; comments (the keep-alives) and unknown lines are skipped.
   * EventSource cannot POST, hence this reader.
   */
  async function readEvents(response, onEvent) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      buffer = (buffer + decoder.decode(value || new Uint8Array(), { stream: !done })).replace(/\r\n/g, '\n');
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let name = 'message';
        const data = [];
        for (const line of block.split('\n')) {
          const colon = line.indexOf(':');
          if (colon === 0) continue;
          const field = colon < 0 ? line : line.slice(0, colon);
          let v = colon < 0 ? '' : line.slice(colon + 1);
          if (v.startsWith(' ')) v = v.slice(1);
          if (field === 'event') name = v;
          else if (field === 'data') data.push(v);
        }
        if (!data.length) continue;
        let parsed;
        try { parsed = JSON.parse(data.join('\n')); } catch (_) { continue; }
        onEvent(name, parsed);
      }
      if (done) return;
    }
  }

  function stopRetryCountdown() {
    if (state.retryTimer) clearInterval(state.retryTimer);
    state.retryTimer = null;
  }

  /**
   * The live view of one send in #send-result: a status line (each attempt), a progress bar
   * while attachments go out, the refused attempt with the server's reply and a countdown
   * to the next, a log of the attempts that failed, and at the end the result.
   */
  function sendView(result) {
    const view = {
      status: el('p', { class: 'send-status', 'data-testid': 'send-status', role: 'status', text: 'Sending…' }),
      bar: el('progress', { id: 'send-progress-bar', 'data-testid': 'send-progress-bar', max: '1', value: '0', 'aria-label': 'Attachments sent' }),
      barText: el('span', { class: 'send-progress-text', 'data-testid': 'send-progress-text' }),
      retry: el('div', { class: 'send-retry', 'data-testid': 'send-retry', hidden: '' }),
      log: el('ul', { class: 'send-attempt-log', 'data-testid': 'send-attempt-log', hidden: '' }),
      outcome: el('div', { class: 'send-outcome', 'data-testid': 'send-outcome' }),
      attempt: 0,
      maxAttempts: 0,
      lastRetry: null,
    };
    view.barRow = el('div', { class: 'send-bar', 'data-testid': 'send-bar', hidden: '' }, view.bar, ' ', view.barText);
    view.live = el('div', { class: 'send-progress', 'data-testid': 'send-progress' }, view.status, view.barRow, view.retry);
    result.hidden = false;
    result.className = 'pending';
    delete result.dataset.outcome;
    // The attempts that failed come first, as they happened; then the one going on.
    put(result, view.log, view.live, view.outcome);
    return view;
  }

  /** "2 of 3", or "2" while the device has not said how many attempts it makes. */
  function attemptOf(n, max) {
    return n + (max ? ' of ' + max : '');
  }

  /** Applies one event of the device's stream to the view. */
  function onSendEvent(view, name, data) {
    if (name === 'attempt') {
      stopRetryCountdown();
      // The refused attempt before this one moves to the log.
      if (view.lastRetry) {
        const r = view.lastRetry;
        view.log.append(el('li', { 'data-testid': 'send-attempt-failed' },
          el('strong', { text: 'Attempt ' + attemptOf(view.attempt, view.maxAttempts) + ' failed: ' }),
          r['server-reply'] ? el('code', { class: 'server-reply', text: r['server-reply'] }) : ((r.diagnosis && r.diagnosis.message) || '')));
        view.log.hidden = false;
        view.lastRetry = null;
      }
      view.attempt = Number(data.attempt) || view.attempt + 1;
      view.retry.hidden = true;
      view.barRow.hidden = true;
      view.status.textContent = 'Sending… attempt ' + attemptOf(view.attempt, view.maxAttempts);
    } else if (name === 'progress') {
      const total = Number(data.total) || 0;
      const read = Math.min(Number(data['bytes-read']) || 0, total);
      if (!total) return;
      view.bar.max = total;
      view.bar.value = read;
      view.barText.textContent = formatBytes(read) + ' of ' + formatBytes(total) + ' (' + Math.floor((read / total) * 100) + ' %)';
      view.barRow.hidden = false;
    } else if (name === 'retry') {
      view.lastRetry = data;
      view.maxAttempts = Number(data['max-attempts']) || view.maxAttempts;
      const next = Number(data['next-attempt']) || view.attempt + 1;
      const d = data.diagnosis || {};
      view.barRow.hidden = true;
      view.status.textContent = 'Attempt ' + attemptOf(view.attempt, view.maxAttempts) + ' failed.';
      const countdown = el('span', { class: 'send-retry-countdown', 'data-testid': 'send-retry-countdown' });
      put(view.retry,
        el('p', { class: 'message', 'data-testid': 'send-retry-message', text: d.message || '' }),
        data['server-reply'] ? el('p', {}, el('strong', { text: 'Server Reply: ' }),
          el('code', { class: 'server-reply', 'data-testid': 'send-retry-reply', text: data['server-reply'] })) : null,
        el('p', { class: 'send-retry-wait', 'data-testid': 'send-retry-wait' }, countdown, ' (attempt ' + attemptOf(next, view.maxAttempts) + ').'));
      view.retry.hidden = false;
      // A countdown on this computer's steady clock: the wait is relative, no clock to agree on.
      const deadline = performance.now() + (Number(data['after-seconds']) || 0) * 1000;
      const tick = () => {
        const left = Math.ceil((deadline - performance.now()) / 1000);
        countdown.textContent = left > 0 ? 'Retrying in ' + left + ' s' : 'Retrying now';
        countdown.dataset.seconds = String(Math.max(0, left));
      };
      stopRetryCountdown();
      tick();
      state.retryTimer = setInterval(tick, 1000);
    }
  }

  /**
   * Shows how the send ended: `status` and `body` as the plain request answers them. A
   * refusal about a message field (the diagnosis's `field`: To, From, the attachments) sits
   * at that field, marked invalid; the others, and the server's reply, below the form.
   */
  function showSendOutcome(view, status, body, attempts, elapsedMs) {
    stopRetryCountdown();
    const result = $('send-result');
    const form = $('send-form');
    view.live.hidden = true;
    // Status 0: the answer broke off, so whether the email went out is not known here.
    const verdict = status === 0 ? 'No result from the device' : 'Not sent';
    const tally = attempts
      ? ' after ' + attempts + (attempts === 1 ? ' attempt' : ' attempts') + (elapsedMs !== undefined ? ', in ' + formatSeconds(elapsedMs) : '') + '.'
      : '.';
    body = body || {};
    if (status >= 200 && status < 300) {
      result.className = 'success';
      result.dataset.outcome = 'accepted';
      put(view.outcome,
        el('p', { class: 'success', 'data-testid': 'send-accepted', text: 'The email was sent. The server accepted it.' }),
        el('p', { class: 'send-attempts', 'data-testid': 'send-attempts', text: 'Sent' + tally }),
        el('table', { class: 'account-table' },
          el('tr', {}, el('th', { text: 'Message ID' }), el('td', { 'data-testid': 'send-message-id', text: body['message-id'] || '' })),
          el('tr', {}, el('th', { text: 'Size' }), el('td', { text: String(body.size ?? '') + ' bytes' })),
          el('tr', {}, el('th', { text: 'Server Reply' }), el('td', { class: 'server-reply', 'data-testid': 'send-server-reply', text: body['server-reply'] || '' }))));
      return;
    }
    result.className = 'failure';
    result.dataset.outcome = 'failed';
    const errors = Array.isArray(body.errors) && body.errors.length
      ? body.errors
      : [body.error || { message: 'The device answered HTTP ' + status + '.', remedy: '' }];
    const hasSlot = (e) => e && e.field && form.querySelector('[data-refusal-for="' + CSS.escape(e.field) + '"]');
    const atFields = errors.filter(hasSlot);
    const rest = errors.filter((e) => !hasSlot(e));
    if (atFields.length) showRefusal(form, { body: { errors: atFields }, error: atFields[0] });
    const reply = body['server-reply'];
    put(view.outcome,
      el('p', { class: 'send-attempts', 'data-testid': 'send-attempts',
        text: verdict + tally + (rest.length ? '' : ' Correct the marked field and send again.') }),
      rest.length ? el('ul', { class: 'diagnostics', 'data-testid': 'send-failure' },
        ...rest.map((e) => diagnosisItem({ severity: 'error', ...e }, 'send-diagnosis'))) : null,
      reply ? el('p', {}, el('strong', { text: 'Server Reply: ' }), el('code', { class: 'server-reply', 'data-testid': 'send-server-reply', text: reply })) : null);
  }

  /**
   * [Send]: posts the test email asking for the device's event stream, and shows each
   * attempt, the attachments' progress and every wait before a retry as they happen.
   */
  async function sendTest(event) {
    event.preventDefault();
    const form = $('send-form');
    const button = $('send-submit');
    clearRefusals(form);
    const view = sendView($('send-result'));
    button.disabled = true;
    try {
      const to = $('send-to').value.split(/[\s,;]+/).filter(Boolean);
      const attachments = [];
      for (const file of $('send-attachment').files) {
        attachments.push({ name: file.name, bytes: new Uint8Array(await file.arrayBuffer()) });
      }
      const message = { to, from: $('send-from').value.trim() || undefined, subject: $('send-subject').value, body: $('send-body').value, attachments };
      const result = await backend.send(message, (name, data) => onSendEvent(view, name, data));
      if (!result) return;
      showSendOutcome(view, Number(result.status), result.body, Number(result.attempts) || 0, result['elapsed-ms']);
    } catch (err) {
      showSendOutcome(view, 0, { error: {
        message: 'The connection to the device was lost before the send ended (' + err.message + ').',
        remedy: 'Look in [Job and Error History] for how the send ended, then send again if it failed.',
      } });
    } finally {
      stopRetryCountdown();
      button.disabled = false;
    }
  }

  // ---- job and error history ------------------------------------------------------------

  const EVENT_NAMES = { 'sign-in': 'Sign-in', send: 'Send', 'provider-reset': 'Service Provider reset', 'refresh-failed': 'Sign-in renewal', relayed: 'Relayed' };
  const ORIGIN_NAMES = { 'web-panel': 'web panel', 'control-panel': 'control panel' };

  /**
   * A cell of a history table, labelled with its column (the label heads it when the rows
   * are cards on narrow screens); a cell with nothing to say is marked empty.
   */
  function entryCell(label, cls, ...children) {
    const present = children.filter((c) => c !== null && c !== undefined && c !== '');
    return el('td', { class: cls + (present.length ? '' : ' empty'), 'data-label': label }, ...present);
  }

  /** When an entry happened, in this computer's local time; null when the device did not say. */
  function entryTime(e) {
    const at = Number(e.at);
    const when = Number.isFinite(at) ? new Date(at * 1000) : null;
    return when ? el('time', { datetime: when.toISOString(), text: when.toLocaleString() }) : null;
  }

  /** An entry's diagnosis: its message, then its remedy (links followable); none without one. */
  function entryDiagnosis(d) {
    if (!d) return [];
    return [el('div', { class: 'message', 'data-code': d.code, text: d.message }),
      d.remedy ? el('div', { class: 'remedy' }, el('strong', { text: 'Remedy: ' }), ...withLinks(d.remedy)) : null];
  }

  /** One entry of the history as a row. */
  function historyRow(e) {
    const kind = (EVENT_NAMES[e.kind] || e.kind) + (e.origin ? ' (' + (ORIGIN_NAMES[e.origin] || e.origin) + ')' : '');
    return el('tr', { class: e.succeeded ? 'succeeded' : 'failed', 'data-testid': 'history-row', 'data-kind': e.kind,
      'data-at': String(e.at), 'data-succeeded': String(!!e.succeeded) },
    entryCell('Time', 'time', entryTime(e)),
    entryCell('Event', 'kind', kind),
    entryCell('Outcome', 'outcome', e.succeeded ? 'Succeeded' : 'Failed'),
    entryCell('Summary', 'summary', e.summary || ''),
    entryCell('Diagnosis', 'diagnosis', ...entryDiagnosis(e.diagnosis)),
    entryCell('Server Reply', 'server-reply', e['server-reply'] || ''));
  }

  async function loadHistory() {
    const events = await backend.getHistory();
    const list = Array.isArray(events) ? events : [];
    // The device lists them newest first; the page keeps its order.
    $('history-body').replaceChildren(...list.map(historyRow));
    $('history-table').hidden = list.length === 0;
    $('history-none').hidden = list.length !== 0;
  }

  // ---- relay ----------------------------------------------------------------------------

  /** One message the relay passed on (or refused) as a row: a failure with its diagnosis. */
  function relayRow(e) {
    return el('tr', { class: e.succeeded ? 'succeeded' : 'failed', 'data-testid': 'relay-row',
      'data-at': String(e.at), 'data-succeeded': String(!!e.succeeded) },
    entryCell('Time', 'time', entryTime(e)),
    entryCell('Outcome', 'outcome', e.succeeded ? 'Succeeded' : 'Failed'),
    entryCell('Summary', 'summary', e.summary || ''),
    entryCell('Diagnosis', 'diagnosis', ...(e.succeeded ? [] : entryDiagnosis(e.diagnosis))));
  }

  /**
   * The relay's state as the device reports it (`GET /api/v1/relay`): where it listens, who
   * may use it, whether devices must log in, and the last messages it relayed; or how to
   * start it when this device runs none.
   */
  function renderRelay(relay) {
    const r = relay || {};
    const listening = r.listening === true;
    const stateLine = $('relay-state');
    stateLine.dataset.listening = String(listening);
    stateLine.className = 'relay-state ' + (listening ? 'running' : 'stopped');
    if (listening && r.process === 'separate') {
      put(stateLine, 'The relay is running in a separate ', el('code', { text: 'mfp-host relay' }),
        ` process (pid ${r.pid}): devices nearby send through it as the signed-in account.`);
    } else if (listening) {
      put(stateLine, 'The relay is running: devices nearby send through it as the signed-in account.');
    } else {
      put(stateLine, 'The relay is not running (start it with ', el('code', { text: 'mfp-host relay' }),
        ' or ', el('code', { text: 'serve --relay-listen' }), ').');
    }
    $('relay-config').hidden = !listening;
    $('relay-recent').hidden = !listening;
    if (!listening) return;
    $('relay-listen').textContent = r.listen || '';
    const allow = Array.isArray(r.allow) ? r.allow : [];
    $('relay-allow').textContent = allow.length ? allow.join(', ') : 'this machine only';
    $('relay-authentication').textContent = r.authentication
      ? 'Required: devices log in with the relay password (AUTH PLAIN or LOGIN, offered after STARTTLS)'
      : 'Not required: devices are told apart by their address only';
    const recent = Array.isArray(r.recent) ? r.recent : [];
    // The device lists them newest first; the page keeps its order.
    $('relay-body').replaceChildren(...recent.map(relayRow));
    $('relay-table').hidden = recent.length === 0;
    $('relay-none').hidden = recent.length !== 0;
  }

  async function loadRelay() {
    renderRelay(await backend.getRelay());
  }

  /** The history page: the relay's state and the history, each shown as soon as it arrives. */
  function refreshHistory() {
    for (const load of [loadRelay, loadHistory]) {
      load().catch((err) => {
        if (err.status !== 401) showBanner('The device did not answer: ' + err.message);
      });
    }
  }

  // ---- control panel emulator ---------------------------------------------------------

  function renderControlPanel(view) {
    state.controlPanel = view;
    $('cp-provider').textContent = PROVIDER_NAMES[view['service-provider']] || view['service-provider'];
    $('cp-server').value = view['smtp-server'] || '';
    $('cp-send-port').value = String(view['send-port'] ?? '');
    $('cp-receive-port').value = String(view['receive-port'] ?? '');
    $('cp-credentials').value = view['login-credentials'];
    const enabled = view['smtp-edits-enabled'] !== false;
    for (const id of ['cp-send-port', 'cp-receive-port', 'cp-credentials']) $(id).disabled = !enabled;
    $('cp-notice').textContent = view.notice || '';
    $('cp-notice').hidden = !view.notice;
  }

  async function loadControlPanel() {
    renderControlPanel(await backend.getControlPanel());
  }

  function controlPanelChanges() {
    const view = state.controlPanel || {};
    const changes = {};
    for (const id of ['cp-server', 'cp-send-port', 'cp-receive-port', 'cp-credentials']) {
      const input = $(id);
      if (input.disabled) continue;
      const key = input.dataset.key;
      const v = input.value.trim();
      if (String(view[key] ?? '') !== v) changes[key] = v;
    }
    return changes;
  }

  async function controlPanelOk() {
    const message = $('cp-message');
    message.className = 'touch-message';
    message.replaceChildren();
    const changes = controlPanelChanges();
    if (Object.keys(changes).length === 0) {
      message.textContent = 'No changes.';
      return;
    }
    try {
      const outcome = await backend.applyControlPanel(changes);
      const notices = outcome.notices || [];
      message.className = 'touch-message ok';
      message.replaceChildren(...(notices.length
        ? notices.map((d) => el('div', { class: 'touch-notice-item', 'data-testid': 'cp-notice-item', 'data-code': d.code, text: d.message + (d.remedy ? ' ' + d.remedy : '') }))
        : [el('div', { text: 'Settings saved.' })]));
      await refreshAll();
    } catch (err) {
      if (err.status === 401) return;
      const e = err.error;
      message.className = 'touch-message refused';
      put(message,
        el('div', { class: 'refusal-message', 'data-testid': 'cp-refusal', 'data-code': e.code, text: e.message }),
        e.remedy ? el('div', { class: 'remedy', text: e.remedy }) : null);
    }
  }

  // ---- pages and start-up ---------------------------------------------------------------

  /** Below 800 px the property tree is a drawer (style.css); this opens or closes it. */
  function setNavOpen(open) {
    document.body.classList.toggle('nav-open', open);
    $('nav-toggle').setAttribute('aria-expanded', String(open));
  }

  function showPage() {
    setNavOpen(false);
    let name = (window.location.hash || '').replace(/^#/, '');
    if (!PAGES.includes(name)) name = 'smtp-general';
    for (const page of PAGES) $('page-' + page).hidden = page !== name;
    if (name === 'history') refreshHistory();
    for (const link of document.querySelectorAll('.cwis-tree a')) {
      link.classList.toggle('current', link.dataset.page === name);
    }
  }

  async function refreshAll() {
    const results = await Promise.allSettled([loadSettings(), loadSignin(), loadControlPanel(), loadConsent()]);
    // The diagnostics list last: it reflects everything just applied.
    results.push(...await Promise.allSettled([loadDiagnostics()]));
    const failed = results.find((r) => r.status === 'rejected' && r.reason && r.reason.status !== 401);
    showBanner(failed ? 'The device did not answer: ' + failed.reason.message : '');
  }

  function init() {
    // Each field's refusal gets an id, so the field can name it in aria-describedby.
    for (const node of document.querySelectorAll('form .refusal[data-refusal-for]')) {
      if (!node.id) node.id = 'refusal-' + node.closest('form').id + '-' + (node.dataset.refusalFor || 'form').replace(/[^A-Za-z0-9-]/g, '-');
    }
    $('nav-toggle').addEventListener('click', () => setNavOpen(!document.body.classList.contains('nav-open')));
    $('cwis-tree').addEventListener('click', (e) => { if (e.target.closest('a')) setNavOpen(false); });
    document.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && document.body.classList.contains('nav-open')) {
        setNavOpen(false);
        $('nav-toggle').focus();
      }
    });
    window.addEventListener('hashchange', showPage);
    showPage();

    $('smtp-form').addEventListener('submit', (e) => { e.preventDefault(); applyForm($('smtp-form'), $('smtp-notices')); });
    $('smtp-undo').addEventListener('click', () => { clearRefusals($('smtp-form')); $('smtp-notices').replaceChildren(); renderSettings(); });
    $('from-form').addEventListener('submit', (e) => { e.preventDefault(); applyForm($('from-form'), $('from-notices')); });
    $('from-undo').addEventListener('click', () => { clearRefusals($('from-form')); $('from-notices').replaceChildren(); renderSettings(); });
    $('device-form').addEventListener('submit', (e) => { e.preventDefault(); applyForm($('device-form'), $('device-notices')); });
    $('open-auth').addEventListener('click', openAuthenticationPage);
    for (const button of document.querySelectorAll('button[data-copy]')) button.addEventListener('click', () => copyFrom(button));
    $('sign-out').addEventListener('click', signOut);
    $('cancel-signin').addEventListener('click', cancelSignin);
    $('diagnostics-refresh').addEventListener('click', refreshAll);
    $('history-refresh').addEventListener('click', refreshHistory);
    $('send-form').addEventListener('submit', sendTest);
    $('cp-ok').addEventListener('click', controlPanelOk);
    $('cp-cancel').addEventListener('click', () => { $('cp-message').replaceChildren(); if (state.controlPanel) renderControlPanel(state.controlPanel); });
    $('logout').addEventListener('click', async () => {
      try { await backend.logout(); } catch (_) { /* going to the login page anyway */ }
      window.location.assign('/login');
    });

    refreshAll().then(() => document.body.setAttribute('data-ready', 'true'));
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
