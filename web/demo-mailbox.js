// The demo mailbox page (/demo/mailbox): switches the stand-ins' scenario. A file of its
// own, since the panel's Content-Security-Policy runs no inline script.
'use strict';
document.getElementById('switch').addEventListener('click', async () => {
  const name = document.getElementById('case').value;
  const r = await fetch('/demo/api/scenario', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ name }),
  });
  const j = await r.json().catch(() => ({}));
  document.getElementById('result').textContent = r.ok
    ? 'Now: ' + j.name + ' — ' + j.description
    : ((j.error && j.error.message) || r.statusText);
});
