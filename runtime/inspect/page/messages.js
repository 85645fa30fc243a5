// The raft messages view of the sequence panel: which messages the panel draws (live: the last few
// seconds the window select says; or a fixed window, around an election), heartbeats hidden when the
// box says so, and the caption that says how much was merged and sampled.
import { short, time } from './dom.js';
import { nameOfId } from './model.js';
import { messageRows, renderSequence, sampledCounts } from './sequence.js';

/** the live view shows this much of the recent past unless the page's window select says otherwise */
const LIVE_MESSAGES_MS = 3000;

/** the live window the page's select chose */
function liveWindowMs(doc) {
  const ms = Number(doc.querySelector('#seq-window')?.value);
  return Number.isFinite(ms) && ms > 0 ? ms : LIVE_MESSAGES_MS;
}

/** the rows of `model`'s messages within `window` ({from, to}; null: live) */
export function currentMessages(doc, model, window) {
  const to = window?.to ?? model.t;
  const from = window ? window.from : to - liveWindowMs(doc);
  const noHeartbeats = doc.querySelector('#seq-no-heartbeats')?.checked === true;
  const skip = (type) => noHeartbeats && (type === 'heartbeat' || type === 'heartbeat-response');
  // a few node ids name thousands of messages: look each up once
  const names = new Map();
  const nameOf = (id) => {
    if (!names.has(id)) names.set(id, nameOfId(model, id) ?? short(id));
    return names.get(id);
  };
  return { from, to, ...messageRows(model.messages, nameOf, from, to, skip) };
}

/** live, the view follows the newest rows (at the bottom) until the reader scrolls up, and again once back at the end */
let follow = true;
let watched = null;

function watchScroll(box) {
  if (watched === box) return;
  watched = box;
  box.addEventListener('scroll', () => {
    follow = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
  });
}

/** the view was switched to the messages (or to another window): show the newest rows */
export function followNewest() {
  follow = true;
}

/** draw the messages of `window` into the panel, with the caption */
export function renderMessages(doc, model, window) {
  const m = currentMessages(doc, model, window);
  const where = window ? `${time(m.from)} – ${time(m.to)}` : `live, the last ${liveWindowMs(doc) / 1000} s`;
  const sampled = m.omitted ? `; sampled: ${m.omitted} earlier rows left out — ${sampledCounts(m.counts)}` : '';
  doc.querySelector('#seq-caption').textContent =
    `raft messages as the receivers' charts got them, ${where}: ${m.total} messages in ${m.rows.length} rows (same sender, receiver, type, term and outcome merged per 100 ms)${sampled}`;
  const box = doc.querySelector('#sequence-view');
  watchScroll(box);
  const following = follow;
  renderSequence(box, m.rows, 'raft messages', 'no raft message in this window');
  if (window === null && following) box.scrollTop = box.scrollHeight;
}
