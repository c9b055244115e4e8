// The login page (login.html): posts the administrator password and shows the device's
// refusal with its remedy. A file of its own, since the panel's Content-Security-Policy
// runs no inline script.
'use strict';
document.getElementById('login-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const error = document.getElementById('login-error');
  const button = document.getElementById('login-submit');
  error.hidden = true;
  button.disabled = true;
  try {
    const response = await fetch('/api/v1/login', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ password: document.getElementById('login-password').value }),
    });
    if (response.ok) {
      window.location.assign('/');
      return;
    }
    let message = response.status === 429
      ? 'Too many login attempts. Wait a moment, then try again.'
      : 'The password is not correct.';
    let remedy = '';
    try {
      const body = await response.json();
      if (body && body.error) {
        message = body.error.message;
        remedy = body.error.remedy || '';
      }
    } catch (_) { /* no JSON body */ }
    const line = document.createElement('div');
    line.textContent = message;
    error.replaceChildren(line);
    if (remedy) {
      const fix = document.createElement('div');
      fix.className = 'remedy';
      fix.textContent = 'Remedy: ' + remedy;
      error.append(fix);
    }
    error.hidden = false;
  } catch (e) {
    error.textContent = 'The device did not answer: ' + e.message;
    error.hidden = false;
  } finally {
    button.disabled = false;
  }
});
