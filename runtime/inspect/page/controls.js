// Hands on (the demo only): stop and restart a node, pause and resume it, cut it off from the others, hand leadership
// over, write a key, add and remove a node — and watch the overview, the charts and the elections answer. The server says whether controls exist.
import { h } from './dom.js';

async function post(action) {
  const res = await fetch('/api/control', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(action) });
  return res.json();
}

export async function setupControls(section) {
  const info = await (await fetch('/api/controls')).json();
  if (!info.enabled) return;
  section.hidden = false;
  const result = section.querySelector('#control-result');
  const rows = section.querySelector('#control-nodes');
  const target = section.querySelector('#transfer-to');
  const refresh = async () => {
    const { nodes } = await (await fetch('/api/controls')).json();
    rows.replaceChildren(
      ...nodes.map((n) => {
        const action = n.running ? 'stop' : 'restart';
        const button = h('button', { type: 'button', 'data-control': action, 'data-node': n.name }, n.running ? `Stop ${n.name}` : `Restart ${n.name}`);
        button.addEventListener('click', () => run({ action, node: n.name }, button));
        const remove = n.running && n.name !== 'intruder' ? h('button', { type: 'button', 'data-control': 'remove', 'data-node': n.name }, 'Remove') : null;
        remove?.addEventListener('click', () => run({ action: 'remove', node: n.name }, remove));
        const cutAction = n.cutOff ? 'reconnect' : 'cut-off';
        const cut = n.running ? h('button', { type: 'button', 'data-control': cutAction, 'data-node': n.name }, n.cutOff ? 'Reconnect' : 'Cut off') : null;
        cut?.addEventListener('click', () => run({ action: cutAction, node: n.name }, cut));
        const pauseAction = n.paused ? 'resume' : 'pause';
        const pause = n.running ? h('button', { type: 'button', 'data-control': pauseAction, 'data-node': n.name }, n.paused ? 'Resume' : 'Pause') : null;
        pause?.addEventListener('click', () => run({ action: pauseAction, node: n.name }, pause));
        const lost = n.cutOff && n.lost ? ` (lost so far: ${n.lost.sent} sent, ${n.lost.received} received)` : '';
        const state = [!n.running ? '✕ stopped' : n.paused ? '⏸ paused' : '✓ running', n.running && n.cutOff ? `⌁ cut off${lost}` : null].filter(Boolean).join(' · ');
        const healthy = n.running && !n.cutOff && !n.paused;
        return h('li', {}, button, ' ', pause, pause ? ' ' : null, cut, cut ? ' ' : null, remove, remove ? ' ' : null, h('span', { class: healthy ? 'ok' : 'bad' }, state));
      }),
    );
    const current = target.value;
    target.replaceChildren(h('option', { value: '' }, 'the most up-to-date voter'), ...nodes.filter((n) => n.name !== 'intruder').map((n) => h('option', { value: n.name }, n.name)));
    target.value = current;
  };
  const run = async (action, button) => {
    if (button) button.disabled = true;
    result.textContent = `${action.action}…`;
    result.className = '';
    try {
      const answer = await post(action);
      result.textContent = answer.ok ? answer.message : `refused: ${answer.error}`;
      result.className = answer.ok ? 'ok' : 'bad';
    } catch (err) {
      result.textContent = `failed: ${err?.message ?? err}`;
      result.className = 'bad';
    } finally {
      if (button) button.disabled = false;
      await refresh();
    }
  };
  section.querySelector('#transfer').addEventListener('click', (e) => run({ action: 'transfer', to: target.value || null }, e.currentTarget));
  section.querySelector('#add-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const form = e.currentTarget;
    run({ action: 'add', node: form.node.value }, form.querySelector('button'));
  });
  section.querySelector('#write-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const form = e.currentTarget;
    run({ action: 'put', key: form.key.value, value: form.value.value }, form.querySelector('button'));
  });
  await refresh();
}
