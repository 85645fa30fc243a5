// Small DOM helpers shared by the page's views.

export const short = (id) => (typeof id === 'string' && id.length > 13 ? `${id.slice(0, 8)}…${id.slice(-4)}` : (id ?? '–'));
export const stateName = (id) => id.split('.').slice(1).join('.');
const pad = (n, width = 2) => String(n).padStart(width, '0');
/** HH:MM:SS.mmm, local time (by hand: toLocaleTimeString took most of the page's script time when busy) */
export const time = (t) => {
  const d = new Date(t);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
};

export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') node.className = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) node.append(c);
  return node;
}

/** Role names as shown, with a symbol so that colour is never the only signal. */
export const ROLE_LABEL = {
  leader: '★ leader',
  follower: '· follower',
  candidate: '? candidate',
  preCandidate: '¿ pre-candidate',
  'pre-candidate': '¿ pre-candidate',
  learner: '◦ learner',
  unreachable: '✕ unreachable',
  paused: '⏸ paused',
  none: '– none',
};
export const roleLabel = (role) => ROLE_LABEL[role] ?? role ?? '–';
export const roleClass = (role) => `role-${String(role ?? 'none').replace(/[^a-zA-Z]/g, '')}`;
