// The browser preview's page: starts the component and the stand-ins
// (preview-backend.js), puts the panel of web/ (panel.html, app.js) in the page unchanged
// with the preview as its backend, and adds what a demo needs: the scenario picker (the
// stand-ins' one table), the simulated sign-in page (approve or decline a code), the
// mailbox, and a sample scan to attach.
import { start, backend, clock, resetAll, views, instantiationTimes } from './preview-backend.js';

const $ = (id) => document.getElementById(id);

function row(...cells) {
  const tr = document.createElement('tr');
  for (const text of cells) {
    const td = document.createElement('td');
    td.textContent = text;
    tr.append(td);
  }
  return tr;
}

/** A one-page PDF, the sample scan. */
function sampleScan() {
  const text = '%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n' +
    '3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n';
  return new File([text], 'scan-0001.pdf', { type: 'application/pdf' });
}

async function main() {
  const info = await (await fetch('build-info.json')).json();
  $('preview-sha256').textContent = info['component-sha256'];
  const preview = await start();
  const { fakes } = preview;

  // The scenario picker: every case of the stand-ins' table.
  const picker = $('preview-scenario');
  const scenarios = JSON.parse(fakes.scenarios());
  for (const s of scenarios) {
    const option = document.createElement('option');
    option.value = s.name;
    option.textContent = s.name;
    option.selected = s.current;
    picker.append(option);
  }
  const describe = () => {
    const s = scenarios.find((c) => c.name === picker.value);
    $('preview-scenario-description').textContent = s ? s.description : '';
  };
  describe();
  picker.addEventListener('change', () => {
    fakes.set_scenario(picker.value);
    preview.saveWorld();
    describe();
  });

  // The simulated verification page.
  const pending = () => {
    const codes = JSON.parse(fakes.pending_codes(clock.nowMs()));
    $('preview-pending').textContent = codes.length
      ? 'Codes waiting: ' + codes.map((c) => c['user-code']).join(', ')
      : 'No code is waiting.';
    if (codes.length && !$('preview-user-code').value) $('preview-user-code').value = codes[codes.length - 1]['user-code'];
  };
  const decide = (decline) => {
    const result = $('preview-approve-result');
    try {
      const answer = JSON.parse(fakes.approve($('preview-user-code').value, decline, clock.nowMs()));
      preview.saveWorld();
      result.dataset.code = answer.code;
      result.dataset.outcome = answer.outcome.kind;
      // The stand-ins' sentence, the one the demo's /demo/devicelogin shows too.
      result.textContent = answer.result;
    } catch (err) {
      const e = typeof err === 'string' ? JSON.parse(err) : { code: 'failed', message: String(err) };
      result.dataset.code = e.code;
      result.textContent = e.message;
    }
    $('preview-user-code').value = '';
    pending();
  };
  $('preview-approve-form').addEventListener('submit', (e) => { e.preventDefault(); decide(false); });
  $('preview-decline').addEventListener('click', () => decide(true));

  // The mailbox.
  const mailbox = () => {
    const list = JSON.parse(fakes.messages());
    $('preview-messages').replaceChildren(...list.reverse().map((m) => row(
      new Date(m['received-at'] * 1000).toLocaleString(), m.from, m.to.join(', '), m.subject, m.attachments.join(', '), m.size + ' bytes')));
  };
  setInterval(() => { pending(); mailbox(); }, 1000);
  pending();
  mailbox();

  $('preview-reset').addEventListener('click', () => {
    resetAll();
    window.location.reload();
  });

  // The panel, unchanged: its markup, then its script with this page's backend.
  const html = await (await fetch('panel.html')).text();
  const doc = new DOMParser().parseFromString(html, 'text/html');
  for (const node of doc.body.querySelectorAll('script')) node.remove();
  $('panel-root').replaceChildren(...[...doc.body.childNodes].map((n) => document.adoptNode(n)));
  $('preview-sample').addEventListener('click', () => {
    const files = new DataTransfer();
    files.items.add(sampleScan());
    $('send-attachment').files = files.files;
    window.location.hash = '#send-test';
  });
  window.mfpBackend = backend;
  window.mfpPreview = { backend, clock, fakes, catalogue: preview.catalogue, views, info, saveWorld: preview.saveWorld, instantiationTimes };
  new MutationObserver(() => {
    if (document.body.dataset.ready === 'true' && !window.mfpPreview.readyMs) {
      window.mfpPreview.readyMs = performance.now();
      $('preview-status').textContent = 'The component is running in this page.';
    }
  }).observe(document.body, { attributes: true, attributeFilter: ['data-ready'] });
  const script = document.createElement('script');
  script.src = 'app.js';
  document.head.append(script);
}

main().catch((err) => {
  const status = $('preview-status');
  status.className = 'preview-status failed';
  status.textContent = 'The preview could not start: ' + (err && err.message || err);
  document.body.dataset.previewFailed = 'true';
});
