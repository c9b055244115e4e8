// The demo's "Enter code" page (/demo/devicelogin), a stand-in for Microsoft's: approves or
// declines the code the panel shows. A file of its own, since the panel's
// Content-Security-Policy runs no inline script.
'use strict';
(() => {
  const code = document.getElementById('code');
  const given = new URLSearchParams(location.search).get('code');
  if (given) code.value = given;

  async function send(decline) {
    const out = document.getElementById('result');
    out.textContent = '';
    delete out.dataset.outcome;
    const r = await fetch('/demo/api/approve', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ 'user-code': code.value.trim(), decline }),
    });
    const j = await r.json().catch(() => ({}));
    if (r.ok) {
      out.textContent = j.result || '';
      out.dataset.outcome = (j.outcome && j.outcome.kind) || '';
    } else {
      out.textContent = ((j.error && j.error.message) || r.statusText)
        + (j.error && j.error.remedy ? ' — ' + j.error.remedy : '');
    }
  }

  document.getElementById('form').addEventListener('submit', (e) => { e.preventDefault(); send(false); });
  document.getElementById('decline').addEventListener('click', () => send(true));
})();
