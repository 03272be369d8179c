// The Precinct console: plain JavaScript, no dependencies, served by the `precinct`
// binary itself. It talks only to this server (the CSP allows nothing else). Every text
// that came from a person (titles, descriptions, notes, reasons, links) is written with
// `textContent`, never parsed as HTML.
'use strict';

const MESSAGES = {
  en: {
    title: 'Precinct console', language: 'Language', logout: 'Sign out',
    'login.title': 'Sign in', 'login.email': 'E-mail', 'login.password': 'Password',
    'login.submit': 'Sign in', 'login.failed': 'Sign-in failed: {detail}',
    'session.expired': 'Your session has ended; sign in again.',
    'queue.title': 'Queue', 'queue.station': 'Station', 'queue.priority': 'Priority',
    'queue.report': 'Report', 'queue.status': 'Status', 'queue.age': 'Age', 'queue.sla': 'SLA',
    'queue.empty': 'No open reports.',
    'map.title': 'Map', 'map.live': 'Live', 'map.reconnecting': 'Reconnecting… (last event {id})',
    'report.replay': 'Replay', 'report.statusThen': 'Status then', 'report.timeline': 'Timeline',
    'report.dispatch': 'Dispatch', 'report.patrol': 'Patrol', 'report.dispatchTo': 'Dispatch to patrol',
    'report.auto': 'Dispatch automatically', 'report.dispatched': 'Dispatched to {patrol}',
    'report.rank': '#{rank} {patrol}: {reason}',
    'field.status': 'Status', 'field.priority': 'Priority', 'field.description': 'Description',
    'field.types': 'Crime types', 'field.submitted': 'Submitted', 'field.patrol': 'Patrol',
    'field.location': 'Location', 'field.notes': 'Notes', 'field.evidence': 'Evidence',
    'inbox.title': 'Assignments', 'inbox.empty': 'Nothing assigned.',
    'inbox.accept': 'Accept', 'inbox.decline': 'Decline', 'inbox.respond': 'Respond',
    'inbox.resolve': 'Resolve', 'inbox.reason': 'Reason', 'inbox.notes': 'Resolution notes',
    'error': 'Error: {detail}', 'none': '—',
  },
  es: {
    title: 'Consola Precinct', language: 'Idioma', logout: 'Cerrar sesión',
    'login.title': 'Iniciar sesión', 'login.email': 'Correo electrónico', 'login.password': 'Contraseña',
    'login.submit': 'Entrar', 'login.failed': 'No se pudo iniciar sesión: {detail}',
    'session.expired': 'Su sesión ha terminado; inicie sesión de nuevo.',
    'queue.title': 'Cola', 'queue.station': 'Estación', 'queue.priority': 'Prioridad',
    'queue.report': 'Denuncia', 'queue.status': 'Estado', 'queue.age': 'Antigüedad', 'queue.sla': 'SLA',
    'queue.empty': 'No hay denuncias abiertas.',
    'map.title': 'Mapa', 'map.live': 'En vivo', 'map.reconnecting': 'Reconectando… (último evento {id})',
    'report.replay': 'Reproducir', 'report.statusThen': 'Estado entonces', 'report.timeline': 'Cronología',
    'report.dispatch': 'Despacho', 'report.patrol': 'Patrulla', 'report.dispatchTo': 'Despachar a la patrulla',
    'report.auto': 'Despachar automáticamente', 'report.dispatched': 'Despachada a {patrol}',
    'report.rank': 'n.º {rank} {patrol}: {reason}',
    'field.status': 'Estado', 'field.priority': 'Prioridad', 'field.description': 'Descripción',
    'field.types': 'Tipos de delito', 'field.submitted': 'Presentada', 'field.patrol': 'Patrulla',
    'field.location': 'Ubicación', 'field.notes': 'Notas', 'field.evidence': 'Pruebas',
    'inbox.title': 'Asignaciones', 'inbox.empty': 'Nada asignado.',
    'inbox.accept': 'Aceptar', 'inbox.decline': 'Rechazar', 'inbox.respond': 'Acudir',
    'inbox.resolve': 'Resolver', 'inbox.reason': 'Motivo', 'inbox.notes': 'Notas de resolución',
    'error': 'Error: {detail}', 'none': '—',
  },
};

const state = {
  lang: localStorage.getItem('precinct.lang') || 'en',
  user: null, sla: null, station: null, stations: [], patrols: new Map(),
  reports: [], current: null, history: [], streams: [], timers: [],
};

const $ = (id) => document.getElementById(id);

function t(key, vars) {
  const text = (MESSAGES[state.lang] || MESSAGES.en)[key] || MESSAGES.en[key] || key;
  return text.replace(/\{(\w+)\}/g, (_, k) => (vars && k in vars ? String(vars[k]) : ''));
}

function translate() {
  document.documentElement.lang = state.lang;
  $('lang').value = state.lang;
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  if (state.current) renderReport();
  renderQueue();
}

function notice(text) { $('notice').textContent = text || ''; }

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  return node;
}

function csrf() {
  const m = document.cookie.split(';').map((c) => c.trim()).find((c) => c.startsWith('precinct_csrf='));
  return m ? m.slice('precinct_csrf='.length) : '';
}

class ApiError extends Error {
  constructor(status, body) { super((body && (body.detail || body.title)) || String(status)); this.status = status; this.body = body; }
}

// Every call goes to this server, with the session cookie; writes carry the CSRF value.
async function api(method, path, body, minPosition) {
  const headers = { Accept: 'application/json' };
  // A stream's event names its log position: the read that follows waits for it.
  if (minPosition) headers['X-Min-Position'] = String(minPosition);
  if (method !== 'GET') headers['X-Precinct-CSRF'] = csrf();
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, {
    method, headers, credentials: 'same-origin', cache: 'no-store',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const json = text ? JSON.parse(text) : null;
  if (res.status === 401 && path !== '/session') { signedOut(t('session.expired')); }
  if (!res.ok) throw new ApiError(res.status, json);
  return json;
}

function stopAll() {
  for (const s of state.streams) s.close();
  for (const id of state.timers) clearInterval(id);
  state.streams = []; state.timers = [];
}

function show(view) {
  for (const id of ['login-view', 'desk-view', 'officer-view']) $(id).hidden = id !== view;
  $('logout').hidden = view === 'login-view';
}

function signedOut(message) {
  stopAll();
  state.user = null; state.current = null;
  $('who').textContent = '';
  show('login-view');
  notice(message);
}

async function start() {
  $('lang').addEventListener('change', () => {
    state.lang = $('lang').value; localStorage.setItem('precinct.lang', state.lang); translate();
  });
  $('login-form').addEventListener('submit', login);
  $('logout').addEventListener('click', logout);
  $('station').addEventListener('change', () => { state.station = $('station').value; refreshDesk(true); });
  $('replay').addEventListener('input', replay);
  $('dispatch').addEventListener('click', () => dispatch(false));
  $('auto').addEventListener('click', () => dispatch(true));
  translate();
  try {
    const session = await fetch('/session', { credentials: 'same-origin', cache: 'no-store' });
    if (session.ok) return enter(await session.json());
  } catch (e) { /* not signed in */ }
  show('login-view');
}

async function login(event) {
  event.preventDefault();
  $('login-error').textContent = '';
  try {
    const session = await api('POST', '/session', { email: $('email').value, password: $('password').value });
    $('password').value = '';
    await enter(session);
  } catch (e) {
    $('login-error').textContent = t('login.failed', { detail: e.message });
  }
}

async function logout() {
  try { await api('DELETE', '/session'); } catch (e) { /* cookies are gone either way */ }
  signedOut('');
}

function scheduleRenewal(expiresIn) {
  const wait = Math.max(5, Math.floor((expiresIn || 60) / 2)) * 1000;
  const id = setTimeout(async () => {
    try { const s = await api('POST', '/session/renew'); scheduleRenewal(s.expires_in); } catch (e) { /* 401 signs out */ }
  }, wait);
  state.timers.push(id);
}

async function enter(session) {
  stopAll();
  notice('');
  state.user = session.user;
  state.sla = session.sla;
  $('who').textContent = `${session.user.email} (${session.user.role})`;
  scheduleRenewal(session.expires_in);
  if (session.user.role === 'PATROL') {
    show('officer-view');
    await loadInbox();
    follow('/me/assignments/stream', { assignment: (a) => loadInbox(a.position) });
  } else if (['DISPATCHER', 'SUPERVISOR', 'ADMIN'].includes(session.user.role)) {
    show('desk-view');
    await loadStations();
    await refreshDesk(true);
    follow('/patrols/stream', { position: onPosition, status: onStatus });
    state.timers.push(setInterval(() => refreshDesk(false), 2000));
  } else {
    show('login-view');
    notice(t('error', { detail: session.user.role }));
  }
}

// An event stream with the browser's own reconnection (it resends Last-Event-ID).
function follow(path, handlers) {
  const source = new EventSource(path);
  let last = '';
  source.onopen = () => { $('stream-state').textContent = t('map.live'); };
  source.onerror = () => { $('stream-state').textContent = t('map.reconnecting', { id: last || t('none') }); };
  for (const [name, handler] of Object.entries(handlers)) {
    source.addEventListener(name, (ev) => { last = ev.lastEventId; handler(JSON.parse(ev.data)); });
  }
  state.streams.push(source);
}

// ---- desk ------------------------------------------------------------------------------

async function loadStations() {
  const page = await api('GET', '/stations?limit=100');
  state.stations = page.items.filter((s) => s.kind === 'PRECINCT' || s.area);
  const select = $('station');
  select.replaceChildren();
  const mine = state.user.station_id;
  const list = mine ? page.items.filter((s) => s.id === mine) : page.items;
  for (const s of list) select.append(el('option', { value: s.id }, s.name));
  state.station = mine || (list[0] && list[0].id) || null;
  if (state.station) select.value = state.station;
  select.disabled = Boolean(mine);
}

async function refreshDesk(patrolsToo) {
  if (!state.station) return;
  try {
    const q = await api('GET', `/queues/reports?station_id=${state.station}&limit=100`);
    state.reports = q.items;
    if (patrolsToo) {
      const p = await api('GET', `/patrols/register?station_id=${state.station}&limit=100`);
      const known = state.patrols;
      state.patrols = new Map(p.items.map((x) => {
        const old = known.get(x.id);
        const merged = { ...x, track: old ? old.track : (x.latitude != null ? [[x.latitude, x.longitude]] : []) };
        // The stream is ahead of the read model's down-sampled position: keep its fix.
        if (old && old.live_at && (!x.location_at || Date.parse(old.live_at) >= Date.parse(x.location_at))) {
          Object.assign(merged, { latitude: old.latitude, longitude: old.longitude, live_at: old.live_at });
        }
        return [x.id, merged];
      }));
      fillPatrols();
    }
    renderQueue();
    drawMap();
  } catch (e) {
    if (e.status !== 401) notice(t('error', { detail: e.message }));
  }
}

function age(from) {
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(from)) / 1000));
  const m = Math.floor(s / 60);
  return m >= 60 ? `${Math.floor(m / 60)}h ${m % 60}m` : `${m}m ${s % 60}s`;
}

// The SLA clock of a report: accept within `accept_secs` of assignment, respond within
// `respond_secs` of acceptance; amber in its last half, red once past.
function sla(r) {
  if (!state.sla) return null;
  let from = null; let secs = 0;
  if (r.status === 'ASSIGNED' && r.assigned_at) { from = r.assigned_at; secs = state.sla.accept_secs; }
  if (r.status === 'ACCEPTED' && r.accepted_at) { from = r.accepted_at; secs = state.sla.respond_secs; }
  if (!from) return null;
  const left = secs - (Date.now() - Date.parse(from)) / 1000;
  const cls = left <= 0 ? 'sla-red' : left <= secs / 2 ? 'sla-amber' : 'sla-ok';
  const abs = Math.abs(Math.round(left));
  return { cls, text: `${left < 0 ? '-' : ''}${Math.floor(abs / 60)}m ${abs % 60}s` };
}

function renderQueue() {
  const body = $('queue').tBodies[0];
  if (!body) return;
  body.replaceChildren();
  for (const r of state.reports) {
    const row = el('tr', { tabindex: '0', 'data-id': r.id });
    row.append(el('td', { class: `prio-${r.priority}` }, r.priority));
    row.append(el('td', { class: 'title' }, r.title));
    row.append(el('td', { class: 'status' }, r.status));
    row.append(el('td', {}, age(r.submitted_at)));
    const clock = sla(r);
    row.append(clock ? el('td', { class: clock.cls }, clock.text) : el('td', {}, t('none')));
    row.addEventListener('click', () => openReport(r.id));
    row.addEventListener('keydown', (e) => { if (e.key === 'Enter') openReport(r.id); });
    body.append(row);
  }
  $('queue-empty').hidden = state.reports.length > 0;
}

function fillPatrols() {
  const select = $('patrol');
  const chosen = select.value;
  select.replaceChildren();
  for (const p of state.patrols.values()) select.append(el('option', { value: p.id }, `${p.call_sign} (${p.status})`));
  if (chosen) select.value = chosen;
}

async function openReport(id) {
  try {
    const [report, history] = await Promise.all([
      api('GET', `/crimes/${id}`), api('GET', `/crimes/${id}/history?limit=100`),
    ]);
    state.current = report;
    state.history = history.items;
    $('candidates').replaceChildren();
    const slider = $('replay');
    slider.max = String(Math.max(0, state.history.length - 1));
    slider.value = slider.max;
    $('report-panel').hidden = false;
    renderReport();
    await replay();
  } catch (e) { notice(t('error', { detail: e.message })); }
}

function renderReport() {
  const r = state.current;
  $('report-title').textContent = r.title;
  const dl = $('report-details');
  dl.replaceChildren();
  const patrol = r.patrol_id && state.patrols.get(r.patrol_id);
  const rows = [
    ['field.status', r.status], ['field.priority', r.priority],
    ['field.description', r.description], ['field.types', r.crime_types.join(', ')],
    ['field.submitted', r.submitted_at],
    ['field.location', `${r.location.latitude.toFixed(5)}, ${r.location.longitude.toFixed(5)}`],
    ['field.patrol', patrol ? patrol.call_sign : (r.patrol_id || t('none'))],
    ['field.notes', (r.notes || []).map((n) => n.note).join(' · ') || t('none')],
    ['field.evidence', (r.evidence || []).map((e) => e.url).join(' · ') || t('none')],
  ];
  for (const [key, value] of rows) { dl.append(el('dt', {}, t(key))); dl.append(el('dd', {}, value)); }
  const list = $('timeline');
  list.replaceChildren();
  for (const h of state.history) list.append(el('li', {}, `${h.occurred_at} ${h.type} ${h.actor_role || ''}`));
}

// The slider picks an event of the timeline; the report is shown as it stood then.
async function replay() {
  const entry = state.history[Number($('replay').value)];
  if (!entry || !state.current) return;
  $('replay-at').textContent = `${entry.occurred_at} (${entry.type})`;
  try {
    const then = await api('GET', `/crimes/${state.current.id}?as_of=${encodeURIComponent(entry.occurred_at)}`);
    $('replay-status').textContent = then.status;
  } catch (e) { $('replay-status').textContent = t('error', { detail: e.message }); }
}

async function dispatch(auto) {
  const r = state.current;
  if (!r) return;
  const body = auto ? { crime_id: r.id } : { crime_id: r.id, patrol_id: $('patrol').value };
  try {
    const out = await api('POST', '/dispatch', body);
    const name = (id) => (state.patrols.get(id) || { call_sign: id }).call_sign;
    await refreshDesk(true);
    await openReport(r.id);
    notice(t('report.dispatched', { patrol: name(out.patrol_id) }));
    const list = $('candidates');
    if (out.decision) {
      for (const c of out.decision.candidates) list.append(el('li', {}, t('report.rank', { rank: c.rank, patrol: name(c.patrol_id), reason: c.reason })));
    }
  } catch (e) { notice(t('error', { detail: e.message })); }
}

function onPosition(p) {
  const patrol = state.patrols.get(p.patrol_id);
  if (!patrol) return;
  patrol.latitude = p.latitude; patrol.longitude = p.longitude; patrol.live_at = p.recorded_at;
  patrol.track.push([p.latitude, p.longitude]);
  if (patrol.track.length > 20) patrol.track.shift();
  drawMap();
}

function onStatus(s) {
  const patrol = state.patrols.get(s.patrol_id);
  if (patrol) { patrol.status = s.status; fillPatrols(); drawMap(); }
}

// A plain equirectangular projection of the station's area, fitted to the view box.
function projection() {
  const pts = [];
  const station = state.stations.find((s) => s.id === state.station);
  const ring = station && station.area && station.area.coordinates && station.area.coordinates[0];
  if (ring) for (const [lon, lat] of ring) pts.push([lat, lon]);
  for (const r of state.reports) pts.push([r.location.latitude, r.location.longitude]);
  for (const p of state.patrols.values()) if (p.latitude != null) pts.push([p.latitude, p.longitude]);
  if (!pts.length) return null;
  let [minLat, maxLat, minLon, maxLon] = [Infinity, -Infinity, Infinity, -Infinity];
  for (const [lat, lon] of pts) {
    minLat = Math.min(minLat, lat); maxLat = Math.max(maxLat, lat);
    minLon = Math.min(minLon, lon); maxLon = Math.max(maxLon, lon);
  }
  const k = Math.cos(((minLat + maxLat) / 2) * Math.PI / 180);
  const w = Math.max((maxLon - minLon) * k, 1e-4); const h = Math.max(maxLat - minLat, 1e-4);
  const scale = Math.min(560 / w, 360 / h);
  const project = ([lat, lon]) => [20 + (lon - minLon) * k * scale, 20 + (maxLat - lat) * scale];
  return { project, metresPerUnit: 111320 / scale, ring };
}

function drawMap() {
  const proj = projection();
  const [areas, pins, dots, bar] = ['map-areas', 'map-reports', 'map-patrols', 'map-scale'].map($);
  for (const g of [areas, pins, dots, bar]) g.replaceChildren();
  if (!proj) return;
  if (proj.ring) {
    areas.append(svg('polygon', { class: 'area', points: proj.ring.map(([lon, lat]) => proj.project([lat, lon]).join(',')).join(' ') }));
  }
  for (const r of state.reports) {
    const [x, y] = proj.project([r.location.latitude, r.location.longitude]);
    const pin = svg('circle', { class: 'pin', cx: x.toFixed(1), cy: y.toFixed(1), r: 5, 'data-id': r.id });
    const title = svg('title'); title.textContent = r.title; pin.append(title);
    pins.append(pin);
  }
  for (const p of state.patrols.values()) {
    if (p.latitude == null) continue;
    if (p.track.length > 1) {
      dots.append(svg('polyline', { points: p.track.map((q) => proj.project(q).join(',')).join(' '), fill: 'none', stroke: '#12355b', 'stroke-opacity': 0.4 }));
    }
    const [x, y] = proj.project([p.latitude, p.longitude]);
    dots.append(svg('circle', { class: `patrol ${p.status}`, cx: x.toFixed(1), cy: y.toFixed(1), r: 7, 'data-id': p.id }));
    const label = svg('text', { class: 'label', x: (x + 9).toFixed(1), y: (y + 4).toFixed(1) });
    label.textContent = p.call_sign; dots.append(label);
  }
  // A scale bar of a round length near 100 units.
  const nice = [50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000];
  const metres = nice.find((m) => m / proj.metresPerUnit >= 60) || nice[nice.length - 1];
  const len = metres / proj.metresPerUnit;
  bar.append(svg('line', { class: 'scale', x1: 20, y1: 390, x2: (20 + len).toFixed(1), y2: 390 }));
  const text = svg('text', { class: 'label', x: 20, y: 384 });
  text.textContent = metres >= 1000 ? `${metres / 1000} km` : `${metres} m`;
  bar.append(text);
}

// ---- officer ---------------------------------------------------------------------------

async function loadInbox(minPosition) {
  try {
    const page = await api('GET', '/me/assignments?limit=100', undefined, minPosition);
    const list = $('inbox');
    list.replaceChildren();
    for (const r of page.items) list.append(assignment(r));
    $('inbox-empty').hidden = page.items.length > 0;
  } catch (e) { if (e.status !== 401) notice(t('error', { detail: e.message })); }
}

function assignment(r) {
  const item = el('li', { 'data-id': r.id });
  item.append(el('strong', { class: 'title' }, r.title));
  item.append(el('p', { class: 'status' }, `${r.status} · ${r.priority}`));
  item.append(el('p', {}, r.description));
  const act = async (verb, body) => {
    try { await api('POST', `/crimes/${r.id}/${verb}`, body); await loadInbox(); } catch (e) { notice(t('error', { detail: e.message })); }
  };
  const button = (key, handler) => { const b = el('button', { type: 'button', 'data-action': key }, t(`inbox.${key}`)); b.addEventListener('click', handler); item.append(b); };
  const input = (key) => { const id = `${key}-${r.id}`; item.append(el('label', { for: id }, t(`inbox.${key}`))); const i = el('input', { id }); item.append(i); return i; };
  if (r.status === 'ASSIGNED') {
    button('accept', () => act('accept'));
    const reason = input('reason');
    button('decline', () => act('decline', { reason: reason.value }));
  } else if (r.status === 'ACCEPTED') {
    button('respond', () => act('respond'));
  } else if (r.status === 'RESPONDING') {
    const notes = input('notes');
    button('resolve', () => act('resolve', { resolution_notes: notes.value }));
  }
  return item;
}

document.addEventListener('DOMContentLoaded', start);
