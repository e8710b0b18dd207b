// rill console: polls the monitoring JSON (/varz, /jsz, /connz) while the page is open
// and visible, keeps a few minutes of samples in memory, and draws tables and charts.
// Every piece of server data reaches the page through textContent (see `el`), never
// through an HTML parser, so a subject, stream name or payload with markup in it is shown as text.
'use strict';

const POLL_MS = 2000;           // one round of requests every two seconds
const KEEP = 150;               // samples kept: five minutes at POLL_MS
const views = ['overview', 'streams', 'consumers', 'connections', 'messages'];

// ---------- DOM helpers (text only) ----------
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}
function byId(id) { return document.getElementById(id); }
function setText(id, text) { const e = byId(id); if (e) e.textContent = String(text); }
function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

// ---------- number formats ----------
function int(n) { return Number(n || 0).toLocaleString('en-US', { maximumFractionDigits: 0 }); }
function rate(n) { return n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US', { maximumFractionDigits: 1 }); }
function bytes(n) {
  n = Number(n || 0);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? String(Math.round(n)) : n.toFixed(1)) + ' ' + units[i];
}

// ---------- history ----------
class Series {
  constructor() { this.points = []; }
  push(t, v) { this.points.push([t, v]); if (this.points.length > KEEP) this.points.shift(); }
  // Per-second rate between the last two counter samples.
  rate() {
    const p = this.points;
    if (p.length < 2) return null;
    const [t0, v0] = p[p.length - 2], [t1, v1] = p[p.length - 1];
    return t1 > t0 ? Math.max(0, (v1 - v0) * 1000 / (t1 - t0)) : null;
  }
  rates() {
    const out = [];
    for (let i = 1; i < this.points.length; i++) {
      const [t0, v0] = this.points[i - 1], [t1, v1] = this.points[i];
      if (t1 > t0) out.push([t1, Math.max(0, (v1 - v0) * 1000 / (t1 - t0))]);
    }
    return out;
  }
}
const hist = {};
function series(key) { return hist[key] || (hist[key] = new Series()); }

// ---------- charts: a line per series on a canvas ----------
function drawChart(canvas, lines, fmt) {
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 400, h = canvas.clientHeight || 140;
  canvas.width = w * ratio; canvas.height = h * ratio;
  const g = canvas.getContext('2d');
  g.scale(ratio, ratio);
  g.clearRect(0, 0, w, h);
  const all = lines.flatMap(l => l.points);
  const pad = 4, left = 56;
  g.strokeStyle = '#ddd'; g.strokeRect(left, pad, w - left - pad, h - 2 * pad);
  if (all.length < 2) return;
  const tMin = Math.min(...all.map(p => p[0])), tMax = Math.max(...all.map(p => p[0]));
  const vMax = Math.max(1, ...all.map(p => p[1]));
  g.fillStyle = '#666'; g.font = '11px sans-serif';
  g.fillText(fmt(vMax), 2, pad + 10); g.fillText(fmt(0), 2, h - pad);
  const x = t => left + (tMax > tMin ? (t - tMin) / (tMax - tMin) : 1) * (w - left - pad);
  const y = v => h - pad - (v / vMax) * (h - 2 * pad);
  for (const line of lines) {
    g.strokeStyle = line.color; g.lineWidth = 1.5; g.beginPath();
    line.points.forEach(([t, v], i) => (i ? g.lineTo(x(t), y(v)) : g.moveTo(x(t), y(v))));
    g.stroke();
  }
}

// ---------- tables: sortable, rows built from text cells ----------
// columns: [{key, label, get(row) -> sortable value, show(row) -> text, cls(row) -> class}]
const sorts = {};
function renderTable(table, columns, rows, onRow) {
  const id = table.id, s = sorts[id] || (sorts[id] = { key: columns[0].key, desc: false });
  const col = columns.find(c => c.key === s.key) || columns[0];
  rows = rows.slice().sort((a, b) => {
    const va = col.get(a), vb = col.get(b);
    const r = typeof va === 'number' && typeof vb === 'number' ? va - vb : String(va).localeCompare(String(vb));
    return s.desc ? -r : r;
  });
  clear(table);
  const head = el('tr');
  for (const c of columns) {
    const th = el('th', c.key === s.key ? (s.desc ? 'sorted desc' : 'sorted') : '', c.label);
    th.addEventListener('click', () => {
      sorts[id] = { key: c.key, desc: s.key === c.key ? !s.desc : Boolean(c.num) };
      refreshView();
    });
    head.appendChild(th);
  }
  table.appendChild(el('thead')).appendChild(head);
  const body = table.appendChild(el('tbody'));
  for (const r of rows) {
    const tr = el('tr', r._cls || '');
    for (const c of columns) {
      const td = c.node ? el('td') : el('td', c.num ? 'num' : '', c.show ? c.show(r) : c.get(r));
      if (c.node) td.appendChild(c.node(r));
      td.dataset.k = c.key;
      tr.appendChild(td);
    }
    if (onRow) { tr.classList.add('clickable'); tr.addEventListener('click', () => onRow(r)); }
    body.appendChild(tr);
  }
  if (!rows.length) body.appendChild(el('tr')).appendChild(el('td', 'muted', 'none')).colSpan = columns.length;
}

// ---------- data ----------
const data = { varz: null, jsz: null, connz: null, at: 0 };

async function getJson(path) {
  const r = await fetch(path, { cache: 'no-store' });
  if (!r.ok) throw new Error(path + ': ' + r.status);
  return r.json();
}

function currentView() {
  const v = location.hash.replace(/^#/, '').split('?')[0];
  return views.includes(v) ? v : 'overview';
}

async function poll() {
  if (document.hidden) return;
  const view = currentView(), now = Date.now();
  const wants = [getJson('/varz'), getJson('/jsz?streams=1&consumers=1&config=1')];
  if (view === 'connections') wants.push(getJson('/connz?limit=1024'));
  try {
    const [varz, jsz, connz] = await Promise.all(wants);
    data.varz = varz; data.jsz = jsz; data.at = now;
    if (connz) data.connz = connz;
    record(now);
    setText('status', 'updated ' + new Date(now).toLocaleTimeString());
  } catch (e) {
    setText('status', 'cannot reach the server (' + e.message + ')');
  }
  refreshView();
}

function streamsOf(jsz) {
  const out = [];
  for (const acc of (jsz && jsz.account_details) || []) {
    for (const s of acc.stream_detail || []) out.push(Object.assign({ account: acc.name }, s));
  }
  return out;
}

function record(now) {
  const v = data.varz;
  for (const k of ['in_msgs', 'out_msgs', 'in_bytes', 'out_bytes', 'connections']) series(k).push(now, v[k] || 0);
  for (const s of streamsOf(data.jsz)) {
    const key = s.account + '\u0000' + s.name;
    series('sm:' + key).push(now, s.state.messages);
    series('sl:' + key).push(now, s.state.last_seq);
  }
  for (const c of consumersOf(data.jsz)) series('cp:' + consumerKey(c)).push(now, c.num_pending);
  for (const c of (data.connz && data.connz.connections) || []) {
    series('ci:' + c.cid).push(now, c.in_msgs); series('co:' + c.cid).push(now, c.out_msgs);
  }
}

// ---------- views ----------
function refreshView() {
  const view = currentView();
  for (const v of views) {
    const sec = byId('view-' + v);
    if (sec) sec.hidden = v !== view;
    const link = document.querySelector('nav a[data-view="' + v + '"]');
    if (link) link.classList.toggle('active', v === view);
  }
  if (!data.varz) return;
  const draw = { overview, streams, consumers, connections, messages }[view];
  if (draw) draw();
}

// The meter `m-<id>` at `used` of `max` (empty without a limit), and `note` under it.
function gauge(id, used, max, note) {
  const m = byId('m-' + id);
  m.max = max > 0 ? max : 1; m.value = max > 0 ? used : 0;
  m.high = m.max * 0.8; m.optimum = 0;
  if (note !== undefined) setText('v-' + id + '-max', max > 0 ? note : '');
}
function overview() {
  const v = data.varz;
  setText('server-name', v.server_name);
  setText('v-version', 'rill ' + v.rill_version + ' (NATS ' + v.version + ')');
  setText('v-uptime', v.uptime);
  for (const k of ['connections', 'subscriptions', 'slow_consumers', 'in_msgs', 'out_msgs']) setText('v-' + k, int(v[k]));
  setText('v-mem', bytes(v.mem));
  setText('v-cpu', 'CPU ' + Number(v.cpu).toFixed(1) + ' % of one core (' + int(v.cores) + ' cores)');
  gauge('connections', v.connections, v.max_connections, 'of ' + int(v.max_connections) + ' allowed');
  const slow = v.slow_consumer_stats || {};
  setText('v-slow-detail', ['clients', 'routes', 'leafs'].map(k => k + ' ' + int(slow[k])).join(', '));
  byId('card-slow').classList.toggle('warn', v.slow_consumers > 0);
  drawChart(byId('c-msgs'), [{ color: '#2b7bb9', points: series('in_msgs').rates() }, { color: '#d9822b', points: series('out_msgs').rates() }], rate);
  drawChart(byId('c-bytes'), [{ color: '#2b7bb9', points: series('in_bytes').rates() }, { color: '#d9822b', points: series('out_bytes').rates() }], bytes);
  drawChart(byId('c-conns'), [{ color: '#3a9a5b', points: series('connections').points }], int);
  const js = data.jsz;
  const on = js && !js.disabled;
  byId('js-off').hidden = on; byId('js-cards').hidden = !on;
  if (!on) return;
  setText('v-js-streams', int(js.streams)); setText('v-js-consumers', int(js.consumers));
  setText('v-js-messages', int(js.messages));
  for (const [k, max] of [['memory', js.config.max_memory], ['storage', js.config.max_storage]]) {
    setText('v-js-' + k, bytes(js[k]) + (max > 0 ? ' of ' + bytes(max) : ''));
    gauge('js-' + k, js[k], max);
  }
  setText('v-js-api', int(js.api.total) + ' / ' + int(js.api.errors));
}

let selectedStream = null;
function streamLag(s) {
  const parts = [];
  if (s.mirror) parts.push('mirror ' + s.mirror.name + ': ' + int(s.mirror.lag));
  for (const src of s.sources || []) parts.push(src.name + ': ' + int(src.lag));
  return parts.join(', ');
}
function streams() {
  const rows = streamsOf(data.jsz);
  const key = s => s.account + '\u0000' + s.name;
  const cols = [
    { key: 'name', label: 'Stream', get: s => s.name },
    { key: 'account', label: 'Account', get: s => s.account },
    { key: 'storage', label: 'Storage', get: s => (s.config && s.config.storage) || '' },
    { key: 'messages', label: 'Messages', num: 1, get: s => s.state.messages, show: s => int(s.state.messages) },
    { key: 'bytes', label: 'Bytes', num: 1, get: s => s.state.bytes, show: s => bytes(s.state.bytes) },
    { key: 'first_seq', label: 'First seq', num: 1, get: s => s.state.first_seq, show: s => int(s.state.first_seq) },
    { key: 'last_seq', label: 'Last seq', num: 1, get: s => s.state.last_seq, show: s => int(s.state.last_seq) },
    { key: 'rate', label: 'Msgs / s', num: 1, get: s => series('sl:' + key(s)).rate() || 0, show: s => rate(series('sl:' + key(s)).rate()) },
    { key: 'consumers', label: 'Consumers', num: 1, get: s => s.state.consumer_count, show: s => int(s.state.consumer_count) },
    { key: 'replicas', label: 'Replicas / leader', get: s => replicas(s) },
    { key: 'lag', label: 'Mirror / source lag', get: s => streamLag(s) },
  ];
  renderTable(byId('t-streams'), cols, rows, s => { selectedStream = key(s); streams(); });
  const sel = rows.find(s => key(s) === selectedStream);
  byId('stream-detail').hidden = !sel;
  if (sel) {
    setText('stream-detail-name', sel.name);
    byId('stream-browse').href = '#messages?' + new URLSearchParams({ account: sel.account, stream: sel.name });
    drawChart(byId('c-stream'), [{ color: '#2b7bb9', points: series('sm:' + selectedStream).points }], int);
  }
}
function replicas(s) {
  const n = (s.config && s.config.num_replicas) || 1;
  const c = s.cluster || {};
  return c.name || n > 1 ? 'R' + n + (c.leader ? ', leader ' + c.leader : ', no leader') : 'R' + n;
}

function connections() {
  const filter = byId('conn-filter').value.trim().toLowerCase();
  let rows = (data.connz && data.connz.connections) || [];
  if (filter) {
    rows = rows.filter(c => [c.name, c.account, c.ip, c.lang, c.version, c.authorized_user]
      .some(f => f && String(f).toLowerCase().includes(filter)));
  }
  const cols = [
    { key: 'cid', label: 'CID', num: 1, get: c => c.cid },
    { key: 'name', label: 'Name', get: c => c.name || '' },
    { key: 'account', label: 'Account', get: c => c.account || '' },
    { key: 'ip', label: 'Address', get: c => c.ip + ':' + c.port },
    { key: 'tls', label: 'TLS', get: c => c.tls_version || (c.type === 'websocket' ? 'ws' : '') },
    { key: 'lib', label: 'Client', get: c => [c.lang, c.version].filter(Boolean).join(' ') },
    { key: 'subs', label: 'Subs', num: 1, get: c => c.subscriptions, show: c => int(c.subscriptions) },
    { key: 'in_rate', label: 'In msgs / s', num: 1, get: c => series('ci:' + c.cid).rate() || 0, show: c => rate(series('ci:' + c.cid).rate()) },
    { key: 'out_rate', label: 'Out msgs / s', num: 1, get: c => series('co:' + c.cid).rate() || 0, show: c => rate(series('co:' + c.cid).rate()) },
    { key: 'in_msgs', label: 'In msgs', num: 1, get: c => c.in_msgs, show: c => int(c.in_msgs) },
    { key: 'out_msgs', label: 'Out msgs', num: 1, get: c => c.out_msgs, show: c => int(c.out_msgs) },
    { key: 'pending', label: 'Pending', num: 1, get: c => c.pending_bytes, show: c => bytes(c.pending_bytes) },
    { key: 'uptime', label: 'Uptime', get: c => c.uptime },
  ];
  renderTable(byId('t-conns'), cols, rows);
}

function consumersOf(jsz) {
  const out = [];
  for (const s of streamsOf(jsz)) {
    for (const c of s.consumer_detail || []) out.push(Object.assign({ account: s.account }, c));
  }
  return out;
}
function consumerKey(c) { return [c.account, c.stream_name, c.name].join('\u0000'); }
// Falling behind: pending grew over the last three samples, or acks outstanding at the limit.
function behind(c) {
  const p = series('cp:' + consumerKey(c)).points.slice(-3);
  const growing = p.length === 3 && p[0][1] < p[1][1] && p[1][1] < p[2][1];
  const max = c.config.max_ack_pending || 0;
  return growing || (max > 0 && c.num_ack_pending >= max);
}
function consumers() {
  const rows = consumersOf(data.jsz).map(c => Object.assign({ _cls: behind(c) ? 'behind' : (c.paused ? 'paused' : '') }, c));
  const dead = c => {
    const subject = (c.config.metadata || {})['rill.dead_letter_subject'];
    const max = c.config.max_deliver > 0 ? 'after ' + c.config.max_deliver + ' deliveries' : '';
    return subject ? [subject, max].filter(Boolean).join(', ') : '';
  };
  const cols = [
    { key: 'stream', label: 'Stream', get: c => c.stream_name },
    { key: 'name', label: 'Consumer', get: c => c.name },
    { key: 'kind', label: 'Kind', get: c => (c.config.deliver_subject ? 'push' : 'pull') + (c.config.durable_name ? ', durable' : '') },
    { key: 'num_pending', label: 'Pending', num: 1, get: c => c.num_pending, show: c => int(c.num_pending) },
    { key: 'num_ack_pending', label: 'Ack pending', num: 1, get: c => c.num_ack_pending, show: c => int(c.num_ack_pending) },
    { key: 'max_ack_pending', label: 'Max ack pending', num: 1, get: c => c.config.max_ack_pending || 0, show: c => int(c.config.max_ack_pending) },
    { key: 'num_redelivered', label: 'Redelivered', num: 1, get: c => c.num_redelivered, show: c => int(c.num_redelivered) },
    { key: 'num_waiting', label: 'Waiting pulls', num: 1, get: c => c.num_waiting, show: c => int(c.num_waiting) },
    { key: 'delivered', label: 'Delivered seq', num: 1, get: c => c.delivered.stream_seq, show: c => int(c.delivered.stream_seq) },
    { key: 'ack_floor', label: 'Ack floor', num: 1, get: c => c.ack_floor.stream_seq, show: c => int(c.ack_floor.stream_seq) },
    { key: 'paused', label: 'Paused', get: c => (c.paused ? 'paused' : '') },
    { key: 'dead_letter', label: 'Dead letters to', get: dead },
    { key: 'behind', label: 'State', get: c => (behind(c) ? 'falling behind' : '') },
  ];
  renderTable(byId('t-consumers'), cols, rows);
}

// ---------- message browser ----------
let msgHash = null, msgStreams = null, msgToken = 0, msgLast = 0, msgBody = null;
function hashParams() {
  const i = location.hash.indexOf('?');
  return new URLSearchParams(i < 0 ? '' : location.hash.slice(i + 1));
}
function messages() {
  const list = streamsOf(data.jsz), sel = byId('msg-stream');
  const names = list.map(s => s.account + '\u0000' + s.name).join('\u0001');
  if (names !== msgStreams) {
    const keep = sel.value;
    msgStreams = names; clear(sel);
    const accounts = new Set(list.map(s => s.account));
    for (const s of list) {
      const o = el('option', '', accounts.size > 1 ? s.name + ' (' + s.account + ')' : s.name);
      o.value = s.account + '\u0000' + s.name;
      sel.appendChild(o);
    }
    if (keep) sel.value = keep;
  }
  if (location.hash === msgHash) { drawMessages(); return; }
  msgHash = location.hash;
  const p = hashParams(), want = p.get('stream');
  if (want !== null) {
    const s = list.find(x => x.name === want && (!p.get('account') || x.account === p.get('account')));
    if (s) sel.value = s.account + '\u0000' + s.name;
  }
  byId('msg-seq').value = p.get('seq') || '';
  byId('msg-subject').value = p.get('subject') || '';
  if (sel.value) loadMessages();
}
function msgQuery(seq) {
  const [account, stream] = byId('msg-stream').value.split('\u0000');
  const q = { account, stream };
  if (seq) q.seq = seq;
  const subject = byId('msg-subject').value.trim();
  if (subject) q.subject = subject;
  return new URLSearchParams(q);
}
function goMessages(seq) {
  const hash = '#messages?' + msgQuery(seq);
  if (location.hash === hash) loadMessages(); else location.hash = hash;
}
function dataCell(shown, extra) {
  const box = el('div');
  box.appendChild(el('pre', '', shown.data));
  const notes = [shown.encoding === 'hex' ? 'hex' : '', shown.truncated ? 'truncated' : '', extra || ''].filter(Boolean);
  if (notes.length) box.appendChild(el('span', 'tag', notes.join(', ')));
  return box;
}
function headerCell(m) {
  const h = m.headers;
  if (!h) return el('span', 'muted', '');
  if (h.raw) return dataCell(h.raw, 'unreadable header block');
  const lines = (h.status ? ['status ' + h.status] : []).concat(h.pairs.map(([k, v]) => k + ': ' + v));
  return el('pre', '', lines.join('\n'));
}
async function loadMessages() {
  const token = ++msgToken, q = msgQuery(byId('msg-seq').value);
  let r, body;
  try {
    r = await fetch('/console/api/msgs?' + q, { cache: 'no-store' });
    body = await r.json();
  } catch (e) { body = { error: e.message }; }
  if (token !== msgToken) return;
  msgBody = r && r.ok ? body : { error: body.error || 'HTTP ' + (r && r.status) };
  drawMessages();
}
function drawMessages() {
  const table = byId('t-msgs'), body = msgBody;
  if (!body) return;
  clear(table);
  if (body.error) { setText('msg-info', 'Cannot show messages: ' + body.error); return; }
  const shownSeqs = body.msgs.map(m => m.seq);
  msgLast = shownSeqs.length ? shownSeqs[shownSeqs.length - 1] : 0;
  setText('msg-info', 'Stream ' + body.stream + ': ' + int(body.messages) + ' messages, sequences ' +
    int(body.first_seq) + ' to ' + int(body.last_seq) + '; showing ' + shownSeqs.length +
    (shownSeqs.length ? ' (' + int(shownSeqs[0]) + ' to ' + int(msgLast) + ')' : '') +
    (body.subject ? ' on ' + body.subject : ''));
  renderTable(table, [
    { key: 'seq', label: 'Seq', num: 1, get: m => m.seq, show: m => int(m.seq) },
    { key: 'time', label: 'Stored', get: m => m.time },
    { key: 'subject', label: 'Subject', get: m => m.subject },
    { key: 'size', label: 'Size', num: 1, get: m => m.size, show: m => bytes(m.size) },
    { key: 'headers', label: 'Headers', get: m => (m.headers ? 1 : 0), node: headerCell },
    { key: 'payload', label: 'Payload', get: m => m.payload.data, node: m => dataCell(m.payload) },
  ], body.msgs);
}

// ---------- start ----------
window.addEventListener('hashchange', () => { refreshView(); poll(); });
document.addEventListener('visibilitychange', () => { if (!document.hidden) poll(); });
document.addEventListener('DOMContentLoaded', () => {
  byId('conn-filter').addEventListener('input', connections);
  byId('msg-form').addEventListener('submit', e => { e.preventDefault(); goMessages(byId('msg-seq').value); });
  byId('msg-newest').addEventListener('click', () => {
    const s = streamsOf(data.jsz).find(x => x.account + '\u0000' + x.name === byId('msg-stream').value);
    if (s) goMessages(Math.max(s.state.first_seq, s.state.last_seq - 24));
  });
  byId('msg-next').addEventListener('click', () => { if (msgLast) goMessages(msgLast + 1); });
  poll();
  setInterval(poll, POLL_MS);
});
