// The CentreWare-style panel of mfp-smtp-oauth. Plain JavaScript, no build step.
// Every value, lock, notice and diagnosis comes from the device's JSON API
// (web/API.md): this page decides nothing, it shows what the device says.
'use strict';

(function () {
  const PAGES = ['smtp-general', 'from-address', 'device-details', 'admin-consent', 'diagnostics', 'send-test', 'control-panel'];
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
      d.remedy ? el('div', { class: 'remedy' }, el('strong', { text: 'Remedy: ' }), d.remedy) : null,
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
   * invalid state for assistive technology), else its input.
   */
  function controlFor(form, key) {
    const selector = '[data-group="' + CSS.escape(key) + '"], [data-key="' + CSS.escape(key) + '"]';
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
      if (e.remedy) target.append(el('div', { class: 'remedy', 'data-testid': 'refusal-remedy' }, el('strong', { text: 'Remedy: ' }), e.remedy));
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
      const outcome = await api('POST', '/api/v1/smtp', { changes });
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
    const view = await api('GET', '/api/v1/smtp');
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
      el('td', { class: 'remedy', 'data-label': 'Remedy', text: d.remedy || '' }))));
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
    setDiagnostics(await api('GET', '/api/v1/diagnostics'));
  }

  // ---- admin consent -----------------------------------------------------------------

  async function loadConsent() {
    const consent = await api('GET', '/api/v1/admin-consent');
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
    $('user-code').textContent = code['user-code'] || '';
    const link = $('verification-uri');
    link.textContent = code['verification-uri'] || '';
    link.href = code['verification-uri'] || '#';
    $('device-code-message').textContent = code.message || '';
    const expiresAt = Number(code['expires-at']) || 0;
    $('countdown').dataset.expiresAt = String(expiresAt);
    tickCountdown();
    if (state.countdownTimer) clearInterval(state.countdownTimer);
    state.countdownTimer = setInterval(tickCountdown, 1000);
  }

  function tickCountdown() {
    const node = $('countdown');
    const left = Math.max(0, Number(node.dataset.expiresAt) - Math.floor(Date.now() / 1000));
    node.textContent = String(Math.floor(left / 60)).padStart(2, '0') + ':' + String(left % 60).padStart(2, '0');
  }

  function startPolling() {
    if (state.pollTimer) clearInterval(state.pollTimer);
    state.pollTimer = setInterval(pollSignin, 2000);
  }

  async function pollSignin() {
    try {
      const status = await api('GET', '/api/v1/signin');
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
    const status = await api('GET', '/api/v1/signin');
    renderSignin(status);
    if (status.code === 'sign-in-in-progress' && !state.pollTimer) startPolling();
    if (status.code !== 'sign-in-in-progress') stopPolling();
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
    try {
      const code = await api('POST', '/api/v1/signin');
      // The account signed in before stays signed in (and shown) while the new sign-in runs.
      const kept = before.account ? { account: before.account, warnings: before.warnings } : {};
      renderSignin({ code: 'sign-in-in-progress', ...kept, ...code });
      startPolling();
    } catch (err) {
      if (err.status === 401) return;
      const outcome = $('signin-outcome');
      outcome.replaceChildren(el('ul', { class: 'diagnostics', 'data-testid': 'signin-failure' },
        diagnosisItem({ severity: 'error', ...err.error }, 'signin-diagnosis')));
      outcome.hidden = false;
    } finally {
      button.disabled = false;
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
      await api('DELETE', '/api/v1/signin');
      stopPolling();
      await refreshAll();
    } catch (err) {
      if (err.status !== 401) showBanner(err.error.message);
    }
  }

  // ---- send test email -----------------------------------------------------------------

  function readBase64(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => {
        const url = String(reader.result);
        resolve(url.slice(url.indexOf(',') + 1));
      };
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(file);
    });
  }

  async function sendTest(event) {
    event.preventDefault();
    const result = $('send-result');
    const button = $('send-submit');
    result.hidden = false;
    result.className = 'pending';
    result.replaceChildren(el('p', { text: 'Sending…' }));
    button.disabled = true;
    try {
      const to = $('send-to').value.split(/[\s,;]+/).filter(Boolean);
      const attachments = [];
      for (const file of $('send-attachment').files) {
        attachments.push({ name: file.name, 'data-base64': await readBase64(file) });
      }
      const report = await api('POST', '/api/v1/send', { to, subject: $('send-subject').value, body: $('send-body').value, attachments });
      result.className = 'success';
      result.dataset.outcome = 'accepted';
      put(result,
        el('p', { class: 'success', 'data-testid': 'send-accepted', text: 'The email was sent. The server accepted it.' }),
        el('table', { class: 'account-table' },
          el('tr', {}, el('th', { text: 'Message ID' }), el('td', { 'data-testid': 'send-message-id', text: report['message-id'] || '' })),
          el('tr', {}, el('th', { text: 'Size' }), el('td', { text: String(report.size ?? '') + ' bytes' })),
          el('tr', {}, el('th', { text: 'Server Reply' }), el('td', { class: 'server-reply', 'data-testid': 'send-server-reply', text: report['server-reply'] || '' }))));
    } catch (err) {
      if (err.status === 401) return;
      result.className = 'failure';
      result.dataset.outcome = 'failed';
      const reply = err.body && err.body['server-reply'];
      put(result,
        el('ul', { class: 'diagnostics', 'data-testid': 'send-failure' }, diagnosisItem({ severity: 'error', ...err.error }, 'send-diagnosis')),
        reply ? el('p', {}, el('strong', { text: 'Server Reply: ' }), el('code', { class: 'server-reply', 'data-testid': 'send-server-reply', text: reply })) : null);
    } finally {
      button.disabled = false;
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
    renderControlPanel(await api('GET', '/api/v1/control-panel'));
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
      const outcome = await api('POST', '/api/v1/control-panel', { changes });
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
    $('sign-out').addEventListener('click', signOut);
    $('diagnostics-refresh').addEventListener('click', refreshAll);
    $('send-form').addEventListener('submit', sendTest);
    $('cp-ok').addEventListener('click', controlPanelOk);
    $('cp-cancel').addEventListener('click', () => { $('cp-message').replaceChildren(); if (state.controlPanel) renderControlPanel(state.controlPanel); });
    $('logout').addEventListener('click', async () => {
      try { await api('POST', '/api/v1/logout'); } catch (_) { /* going to the login page anyway */ }
      window.location.assign('/login');
    });

    refreshAll().then(() => document.body.setAttribute('data-ready', 'true'));
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
