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
    'inbox.note': 'Note', 'inbox.addNote': 'Add note', 'inbox.evidence': 'Evidence link',
    'inbox.mediaType': 'Kind', 'inbox.attach': 'Attach evidence',
    'error': 'Error: {detail}', 'none': '—',
    'invite.have': 'I have an invite code', 'invite.code': 'Invite code', 'invite.name': 'Your name',
    'invite.password': 'Choose a password (10 characters or more)', 'invite.submit': 'Create my account',
    'invite.done': 'Account created for {email}: sign in.',
    'tab.views': 'Views', 'tab.desk': 'Desk', 'tab.supervision': 'Supervision', 'tab.setup': 'Set-up',
    'control.title': 'Control', 'control.priority': 'Priority', 'control.triage': 'Set priority',
    'control.reason': 'Reason', 'control.unassign': 'Take back from the patrol',
    'control.reassign': 'Reassign to the chosen patrol', 'control.toStation': 'Transfer to station',
    'control.transfer': 'Transfer', 'control.reopen': 'Reopen', 'control.reject': 'Reject as invalid',
    'control.note': 'Note', 'control.addNote': 'Add note', 'control.needReason': 'Give a reason first.',
    'control.done': 'Done: {action}.', 'control.transferred': 'Transferred to {station}.',
    'supervision.title': 'Supervision', 'supervision.closures': 'Awaiting closure',
    'supervision.noClosures': 'No resolution awaits review.', 'supervision.breaches': 'SLA breaches',
    'supervision.kind': 'Deadline', 'supervision.overdue': 'Overdue by',
    'supervision.noBreaches': 'No report is past its deadline.', 'supervision.accept': 'Acceptance',
    'supervision.respond': 'Response', 'supervision.approve': 'Approve closure',
    'supervision.rejectReason': 'Why the resolution is rejected', 'supervision.reject': 'Reject closure',
    'supervision.resolution': 'Resolution: {notes}', 'supervision.approved': 'Closed: {title}',
    'supervision.rejected': 'Back to the patrol: {title}',
    'setup.title': 'Set-up', 'setup.newStation': 'New station', 'setup.name': 'Name', 'setup.kind': 'Kind',
    'setup.latitude': 'Latitude', 'setup.longitude': 'Longitude',
    'setup.areaSize': 'Area: a square of this many km around the point (0: none)',
    'setup.crimeTypes': 'Crime types (divisions; comma-separated)', 'setup.createStation': 'Create station',
    'setup.stations': 'Stations', 'setup.newStaff': 'New staff member at the station', 'setup.role': 'Role',
    'setup.password': 'Password (10 characters or more; leave empty to invite)',
    'setup.createAccount': 'Create account', 'setup.invite': 'Invite instead',
    'setup.staff': 'Staff of the station', 'setup.newPatrol': 'New patrol at the station',
    'setup.callSign': 'Call sign', 'setup.crew': 'Crew (officers of the station)',
    'setup.createPatrol': 'Register patrol', 'setup.patrols': 'Patrols of the station',
    'setup.stationCreated': 'Station created: {name}', 'setup.accountCreated': 'Account created: {email} ({role})',
    'setup.inviteCode': 'Invite code for {email}, valid until {until}: {code}',
    'setup.patrolCreated': 'Patrol registered: {call_sign}', 'setup.noStation': 'Create or choose a station first.',
    'setup.noOfficers': 'No officer at this station yet.', 'setup.withArea': 'with area',
    'setup.inactive': 'inactive', 'setup.crewCount': '{n} officers',
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
    'inbox.note': 'Nota', 'inbox.addNote': 'Añadir nota', 'inbox.evidence': 'Enlace a la prueba',
    'inbox.mediaType': 'Tipo', 'inbox.attach': 'Adjuntar prueba',
    'error': 'Error: {detail}', 'none': '—',
    'invite.have': 'Tengo un código de invitación', 'invite.code': 'Código de invitación', 'invite.name': 'Su nombre',
    'invite.password': 'Elija una contraseña (10 caracteres o más)', 'invite.submit': 'Crear mi cuenta',
    'invite.done': 'Cuenta creada para {email}: inicie sesión.',
    'tab.views': 'Vistas', 'tab.desk': 'Despacho', 'tab.supervision': 'Supervisión', 'tab.setup': 'Configuración',
    'control.title': 'Control', 'control.priority': 'Prioridad', 'control.triage': 'Fijar prioridad',
    'control.reason': 'Motivo', 'control.unassign': 'Retirar de la patrulla',
    'control.reassign': 'Reasignar a la patrulla elegida', 'control.toStation': 'Trasladar a la estación',
    'control.transfer': 'Trasladar', 'control.reopen': 'Reabrir', 'control.reject': 'Rechazar por no válida',
    'control.note': 'Nota', 'control.addNote': 'Añadir nota', 'control.needReason': 'Indique antes un motivo.',
    'control.done': 'Hecho: {action}.', 'control.transferred': 'Trasladada a {station}.',
    'supervision.title': 'Supervisión', 'supervision.closures': 'Pendientes de cierre',
    'supervision.noClosures': 'Ninguna resolución espera revisión.', 'supervision.breaches': 'Incumplimientos del SLA',
    'supervision.kind': 'Plazo', 'supervision.overdue': 'Retraso',
    'supervision.noBreaches': 'Ninguna denuncia ha superado su plazo.', 'supervision.accept': 'Aceptación',
    'supervision.respond': 'Respuesta', 'supervision.approve': 'Aprobar el cierre',
    'supervision.rejectReason': 'Por qué se rechaza la resolución', 'supervision.reject': 'Rechazar el cierre',
    'supervision.resolution': 'Resolución: {notes}', 'supervision.approved': 'Cerrada: {title}',
    'supervision.rejected': 'Devuelta a la patrulla: {title}',
    'setup.title': 'Configuración', 'setup.newStation': 'Nueva estación', 'setup.name': 'Nombre', 'setup.kind': 'Tipo',
    'setup.latitude': 'Latitud', 'setup.longitude': 'Longitud',
    'setup.areaSize': 'Zona: un cuadrado de tantos km alrededor del punto (0: ninguna)',
    'setup.crimeTypes': 'Tipos de delito (divisiones; separados por comas)', 'setup.createStation': 'Crear estación',
    'setup.stations': 'Estaciones', 'setup.newStaff': 'Nuevo miembro del personal de la estación', 'setup.role': 'Rol',
    'setup.password': 'Contraseña (10 caracteres o más; vacía para invitar)',
    'setup.createAccount': 'Crear cuenta', 'setup.invite': 'Invitar en su lugar',
    'setup.staff': 'Personal de la estación', 'setup.newPatrol': 'Nueva patrulla de la estación',
    'setup.callSign': 'Indicativo', 'setup.crew': 'Tripulación (agentes de la estación)',
    'setup.createPatrol': 'Registrar patrulla', 'setup.patrols': 'Patrullas de la estación',
    'setup.stationCreated': 'Estación creada: {name}', 'setup.accountCreated': 'Cuenta creada: {email} ({role})',
    'setup.inviteCode': 'Código de invitación para {email}, válido hasta {until}: {code}',
    'setup.patrolCreated': 'Patrulla registrada: {call_sign}', 'setup.noStation': 'Cree o elija antes una estación.',
    'setup.noOfficers': 'Aún no hay agentes en esta estación.', 'setup.withArea': 'con zona',
    'setup.inactive': 'inactiva', 'setup.crewCount': '{n} agentes',
  },
};

const state = {
  lang: localStorage.getItem('precinct.lang') || 'en',
  user: null, sla: null, station: null, stations: [], allStations: [], patrols: new Map(),
  reports: [], current: null, history: [], streams: [], timers: [], tab: 'desk-panel',
  staff: [],
};

// What each role may do beyond reading the desk.
const SUPERVISING = ['SUPERVISOR', 'ADMIN'];
const OPEN = ['NEW', 'ASSIGNED', 'ACCEPTED', 'RESPONDING'];
const HELD = ['ASSIGNED', 'ACCEPTED', 'RESPONDING'];

const $ = (id) => document.getElementById(id);

function t(key, vars) {
  const text = (MESSAGES[state.lang] || MESSAGES.en)[key] || MESSAGES.en[key] || key;
  return text.replace(/\{(\w+)\}/g, (_, k) => (vars && k in vars ? String(vars[k]) : ''));
}

function translate() {
  document.documentElement.lang = state.lang;
  $('lang').value = state.lang;
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  $('tabs').setAttribute('aria-label', t('tab.views'));
  if (state.current) renderReport();
  renderQueue();
  if (state.user && state.tab === 'setup-panel') renderSetup();
  if (state.user && state.tab === 'supervision-panel') refreshSupervision();
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
  clearTimeout(state.pendingTimer);
  state.streams = []; state.timers = []; state.desk = null; state.pendingTimer = null; state.pending = 0;
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
  $('invite-form').addEventListener('submit', acceptInvite);
  $('station').addEventListener('change', async () => {
    state.station = $('station').value; $('report-panel').hidden = true; state.current = null;
    followDesk();
    await refreshDesk(true); refreshTab();
  });
  for (const b of document.querySelectorAll('#tabs button')) b.addEventListener('click', () => showTab(b.dataset.tab));
  $('replay').addEventListener('input', replay);
  $('dispatch').addEventListener('click', () => dispatch(false));
  $('auto').addEventListener('click', () => dispatch(true));
  wireControl();
  $('station-form').addEventListener('submit', createStation);
  $('staff-form').addEventListener('submit', (e) => { e.preventDefault(); createStaff(false); });
  $('sf-invite').addEventListener('click', () => createStaff(true));
  $('patrol-form').addEventListener('submit', createPatrol);
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
  // The tile layer of PRECINCT_MAP_TILES, if the server has one (its origin is the only
  // other one the CSP allows).
  state.tiles = session.map_tiles || null;
  $('map').classList.toggle('tiled', Boolean(state.tiles));
  $('who').textContent = `${session.user.email} (${session.user.role})`;
  scheduleRenewal(session.expires_in);
  if (session.user.role === 'PATROL') {
    show('officer-view');
    await loadInbox();
    follow('/me/assignments/stream', { assignment: (a) => loadInbox(a.position) });
  } else if (['DISPATCHER', 'SUPERVISOR', 'ADMIN'].includes(session.user.role)) {
    show('desk-view');
    const role = session.user.role;
    document.querySelector('#tabs [data-tab="supervision-panel"]').hidden = !SUPERVISING.includes(role);
    document.querySelector('#tabs [data-tab="setup-panel"]').hidden = role !== 'ADMIN';
    $('tabs').hidden = role === 'DISPATCHER'; // one view: no tabs
    showTab('desk-panel');
    await loadStations();
    await refreshDesk(true);
    follow('/patrols/stream', { position: onPosition, status: onStatus });
    followDesk();
    // The clocks (age, SLA) tick here; the queue itself changes only on stream events.
    state.timers.push(setInterval(renderQueue, 1000));
  } else {
    show('login-view');
    notice(t('error', { detail: session.user.role }));
  }
}

// An event stream with the browser's own reconnection (it resends Last-Event-ID).
function follow(path, handlers, opened) {
  const source = new EventSource(path);
  let last = '';
  source.onopen = () => { $('stream-state').textContent = t('map.live'); if (opened) opened(); };
  source.onerror = () => { $('stream-state').textContent = t('map.reconnecting', { id: last || t('none') }); };
  for (const [name, handler] of Object.entries(handlers)) {
    source.addEventListener(name, (ev) => { last = ev.lastEventId; handler(JSON.parse(ev.data)); });
  }
  state.streams.push(source);
  return source;
}

// The station's report changes, live (`/queues/reports/stream`): each one re-reads the
// queue (and the supervision lists when shown) as of that event's log position. Bursts
// are read once.
function followDesk() {
  if (state.desk) { state.desk.close(); state.streams = state.streams.filter((s) => s !== state.desk); state.desk = null; }
  if (!state.station) return;
  // Opened (or reopened): read once, for what changed between the last read and now.
  state.desk = follow(`/queues/reports/stream?station_id=${state.station}`, { report: (r) => queueChanged(r.position) },
    () => queueChanged(0));
}

function queueChanged(position) {
  state.pending = Math.max(state.pending || 0, position);
  if (state.pendingTimer) return;
  state.pendingTimer = setTimeout(async () => {
    const at = state.pending;
    state.pending = 0; state.pendingTimer = null;
    await refreshDesk(false, at);
    if (state.tab === 'supervision-panel') refreshSupervision();
  }, 150);
}

// ---- desk ------------------------------------------------------------------------------

// The stations (an ADMIN chooses one; staff see their own). `prefer`: the one to show
// (a station just created); `minPosition`: the write the list must include.
async function loadStations(prefer, minPosition) {
  const page = await api('GET', '/stations?limit=100', undefined, minPosition);
  state.allStations = page.items;
  state.stations = page.items.filter((s) => s.kind === 'PRECINCT' || s.area);
  const select = $('station');
  select.replaceChildren();
  const mine = state.user.station_id;
  const list = mine ? page.items.filter((s) => s.id === mine) : page.items;
  for (const s of list) select.append(el('option', { value: s.id }, s.name));
  const keep = [prefer, state.station].find((id) => id && list.some((s) => s.id === id));
  state.station = mine || keep || (list[0] && list[0].id) || null;
  if (state.station) select.value = state.station;
  select.disabled = Boolean(mine);
  fillStations();
}

async function refreshDesk(patrolsToo, minPosition) {
  if (!state.station) return;
  try {
    const q = await api('GET', `/queues/reports?station_id=${state.station}&limit=100`, undefined, minPosition);
    state.reports = q.items;
    if (patrolsToo) {
      const p = await api('GET', `/patrols/register?station_id=${state.station}&limit=100`, undefined, minPosition);
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

// The queue's rows: rebuilt when the reports or their order change, else only their
// cells are rewritten (the clocks tick every second), so a focused row keeps focus.
function renderQueue() {
  const body = $('queue').tBodies[0];
  if (!body) return;
  const ids = state.reports.map((r) => r.id).join(',');
  if (body.dataset.ids !== ids) {
    const focused = document.activeElement && document.activeElement.closest && document.activeElement.closest('#queue tr');
    body.dataset.ids = ids;
    body.replaceChildren();
    for (const r of state.reports) {
      const row = el('tr', { tabindex: '0', 'data-id': r.id });
      for (let i = 0; i < 5; i++) row.append(el('td'));
      row.addEventListener('click', () => openReport(r.id));
      row.addEventListener('keydown', (e) => { if (e.key === 'Enter') openReport(r.id); });
      body.append(row);
    }
    if (focused) { const again = body.querySelector(`tr[data-id="${focused.dataset.id}"]`); if (again) again.focus(); }
  }
  state.reports.forEach((r, i) => {
    const cells = body.rows[i].cells;
    const clock = sla(r);
    const values = [
      [`prio-${r.priority}`, r.priority], ['title', r.title], ['status', r.status],
      ['', age(r.submitted_at)], clock ? [clock.cls, clock.text] : ['', t('none')],
    ];
    values.forEach(([cls, text], j) => {
      if (cells[j].className !== cls) cells[j].className = cls;
      if (cells[j].textContent !== text) cells[j].textContent = text;
    });
  });
  $('queue-empty').hidden = state.reports.length > 0;
}

function fillPatrols() {
  const select = $('patrol');
  const chosen = select.value;
  select.replaceChildren();
  for (const p of state.patrols.values()) select.append(el('option', { value: p.id }, `${p.call_sign} (${p.status})`));
  if (chosen) select.value = chosen;
}

async function openReport(id, minPosition) {
  try {
    const [report, history] = await Promise.all([
      api('GET', `/crimes/${id}`, undefined, minPosition), api('GET', `/crimes/${id}/history?limit=100`, undefined, minPosition),
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
  renderControl();
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
    await refreshDesk(true, out.position);
    await openReport(r.id, out.position);
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
  if (state.tiles) return mercator(pts, ring, (minLat + maxLat) / 2);
  const k = Math.cos(((minLat + maxLat) / 2) * Math.PI / 180);
  const w = Math.max((maxLon - minLon) * k, 1e-4); const h = Math.max(maxLat - minLat, 1e-4);
  const scale = Math.min(560 / w, 360 / h);
  const project = ([lat, lon]) => [20 + (lon - minLon) * k * scale, 20 + (maxLat - lat) * scale];
  return { project, metresPerUnit: 111320 / scale, ring };
}

// With a tile layer: Web Mercator (the tiles' projection), in units of the unit square,
// fitted to the view box; the tiles of the zoom that draws them at 128–256 units each.
function mercator(pts, ring, midLat) {
  const world = ([lat, lon]) => {
    const s = Math.sin(Math.max(-85, Math.min(85, lat)) * Math.PI / 180);
    return [(lon + 180) / 360, 0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)];
  };
  const xy = pts.map(world);
  const [minX, maxX] = [Math.min(...xy.map((p) => p[0])), Math.max(...xy.map((p) => p[0]))];
  const [minY, maxY] = [Math.min(...xy.map((p) => p[1])), Math.max(...xy.map((p) => p[1]))];
  const scale = Math.min(560 / Math.max(maxX - minX, 1e-9), 360 / Math.max(maxY - minY, 1e-9));
  const project = (p) => { const [x, y] = world(p); return [20 + (x - minX) * scale, 20 + (y - minY) * scale]; };
  const z = Math.max(0, Math.min(19, Math.ceil(Math.log2(scale / 256))));
  const n = 2 ** z;
  const size = scale / n;
  const tiles = [];
  const [x0, x1] = [minX - 20 / scale, minX + 580 / scale].map((x) => Math.floor(x * n));
  const [y0, y1] = [minY - 20 / scale, minY + 380 / scale].map((y) => Math.floor(y * n));
  for (let ty = Math.max(0, y0); ty <= Math.min(n - 1, y1); ty++) {
    for (let tx = x0; tx <= x1; tx++) {
      const wrapped = ((tx % n) + n) % n;
      const url = state.tiles.replace('{z}', z).replace('{x}', wrapped).replace('{y}', ty);
      tiles.push({ url, x: 20 + (tx / n - minX) * scale, y: 20 + (ty / n - minY) * scale, size });
    }
  }
  const metresPerUnit = 40075016.686 * Math.cos(midLat * Math.PI / 180) / scale;
  return { project, metresPerUnit, ring, tiles };
}

// The tile images, redrawn only when the set of tiles changes (not on every move).
function drawTiles(tiles) {
  const g = $('map-tiles');
  const key = (tiles || []).map((t) => `${t.url}@${t.x.toFixed(1)},${t.y.toFixed(1)},${t.size.toFixed(1)}`).join('|');
  if (g.dataset.key === key) return;
  g.dataset.key = key;
  g.replaceChildren();
  for (const t of tiles || []) {
    g.append(svg('image', {
      href: t.url, x: t.x.toFixed(1), y: t.y.toFixed(1), width: t.size.toFixed(1), height: t.size.toFixed(1),
      preserveAspectRatio: 'none',
    }));
  }
}

function drawMap() {
  const proj = projection();
  const [areas, pins, dots, bar] = ['map-areas', 'map-reports', 'map-patrols', 'map-scale'].map($);
  for (const g of [areas, pins, dots, bar]) g.replaceChildren();
  drawTiles(proj && proj.tiles);
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

// ---- tabs ------------------------------------------------------------------------------

function showTab(id) {
  state.tab = id;
  for (const b of document.querySelectorAll('#tabs button')) b.setAttribute('aria-pressed', String(b.dataset.tab === id));
  for (const panel of document.querySelectorAll('#desk-view .tab')) panel.hidden = panel.id !== id;
  refreshTab();
}

function refreshTab() {
  if (!state.user) return;
  if (state.tab === 'supervision-panel') refreshSupervision();
  if (state.tab === 'setup-panel') loadSetup();
}

// The stations a report may be transferred to (any but its own).
function fillStations() {
  const select = $('control-station');
  const chosen = select.value;
  select.replaceChildren();
  for (const s of state.allStations) {
    if (state.current && s.id === state.current.station_id) continue;
    select.append(el('option', { value: s.id }, s.name));
  }
  if (chosen) select.value = chosen;
}

// ---- dispatcher control ----------------------------------------------------------------

// Which control actions the report's status and the caller's role allow (the server
// decides in the end; a refusal is shown as a notice).
function renderControl() {
  const r = state.current;
  if (!r) return;
  const role = state.user.role;
  const shown = {
    'control-triage': OPEN.includes(r.status),
    'control-unassign': HELD.includes(r.status),
    'control-reassign': HELD.includes(r.status),
    'control-transfer': OPEN.includes(r.status),
    'control-reopen': ['CLOSED', 'REJECTED'].includes(r.status) && SUPERVISING.includes(role),
    'control-reject': OPEN.includes(r.status),
  };
  for (const [id, on] of Object.entries(shown)) $(id).hidden = !on;
  $('control-priority').hidden = !shown['control-triage'];
  $('control-priority').previousElementSibling.hidden = !shown['control-triage'];
  $('control-station').hidden = !shown['control-transfer'];
  $('control-station').previousElementSibling.hidden = !shown['control-transfer'];
  $('control-priority').value = r.priority;
  fillStations();
}

function wireControl() {
  const reason = () => $('control-reason').value.trim();
  const needing = (fn) => async () => {
    if (!reason()) { notice(t('control.needReason')); $('control-reason').focus(); return; }
    await fn(reason());
  };
  $('control-triage').addEventListener('click', () => control('triage', { priority: $('control-priority').value }));
  $('control-unassign').addEventListener('click', needing((why) => control('unassign', { from_patrol_id: state.current.patrol_id, reason: why })));
  $('control-reassign').addEventListener('click', needing((why) => control('reassign', {
    from_patrol_id: state.current.patrol_id, patrol_id: $('patrol').value, reason: why,
  })));
  $('control-transfer').addEventListener('click', needing(async (why) => {
    const to = $('control-station').value;
    try {
      const out = await api('POST', `/crimes/${state.current.id}/transfer`, { station_id: to, reason: why });
      const station = state.allStations.find((s) => s.id === to);
      $('control-reason').value = '';
      // The report is the other station's now: staff of this one no longer see it.
      state.current = null; $('report-panel').hidden = true;
      await refreshDesk(false, out.position);
      notice(t('control.transferred', { station: station ? station.name : to }));
    } catch (e) { notice(t('error', { detail: e.message })); }
  }));
  $('control-reopen').addEventListener('click', needing((why) => control('reopen', { reason: why })));
  $('control-reject').addEventListener('click', needing((why) => control('reject', { justification: why })));
  $('control-add-note').addEventListener('click', async () => {
    const note = $('control-note').value.trim();
    if (!note) { $('control-note').focus(); return; }
    if (await control('notes', { note })) $('control-note').value = '';
  });
}

// The button that sends each control command, for the notice that it was done.
const CONTROL_LABELS = {
  triage: 'control.triage', unassign: 'control.unassign', reassign: 'control.reassign',
  reopen: 'control.reopen', reject: 'control.reject', notes: 'control.addNote',
};

// A control command on the open report; the panel and the queue are re-read after it.
async function control(verb, body) {
  const r = state.current;
  if (!r) return false;
  try {
    const out = await api('POST', `/crimes/${r.id}/${verb}`, body);
    $('control-reason').value = '';
    await refreshDesk(true, out.position);
    await openReport(r.id, out.position);
    notice(t('control.done', { action: t(CONTROL_LABELS[verb]) }));
    return true;
  } catch (e) { notice(t('error', { detail: e.message })); return false; }
}

// ---- supervision -----------------------------------------------------------------------

async function refreshSupervision() {
  if (!state.station || !SUPERVISING.includes(state.user.role)) return;
  try {
    const [closures, accept, respond] = await Promise.all([
      api('GET', `/queues/reports?station_id=${state.station}&status=RESOLVED&limit=100`),
      api('GET', `/sla?overdue=accept&station_id=${state.station}&limit=100`),
      api('GET', `/sla?overdue=respond&station_id=${state.station}&limit=100`),
    ]);
    renderClosures(closures.items);
    renderBreaches([
      ...accept.items.map((b) => ({ ...b, kind: 'accept' })),
      ...respond.items.map((b) => ({ ...b, kind: 'respond' })),
    ]);
  } catch (e) { if (e.status !== 401) notice(t('error', { detail: e.message })); }
}

function renderClosures(items) {
  const list = $('closures');
  // Keep what a supervisor is typing: rebuild only when the set of reports changed.
  const ids = items.map((r) => r.id).join(',');
  if (list.dataset.ids === ids && list.dataset.lang === state.lang) return;
  list.dataset.ids = ids; list.dataset.lang = state.lang;
  list.replaceChildren();
  for (const r of items) {
    const item = el('li', { 'data-id': r.id });
    const patrol = r.patrol_id && state.patrols.get(r.patrol_id);
    item.append(el('strong', { class: 'title' }, r.title));
    item.append(el('p', {}, `${patrol ? patrol.call_sign : (r.patrol_id || t('none'))} · ${r.resolved_at || ''}`));
    item.append(el('p', { class: 'resolution' }, t('supervision.resolution', { notes: r.resolution_notes || t('none') })));
    const approve = el('button', { type: 'button', 'data-action': 'approve' }, t('supervision.approve'));
    approve.addEventListener('click', () => review(r, 'approve'));
    item.append(approve);
    const id = `closure-reason-${r.id}`;
    item.append(el('label', { for: id }, t('supervision.rejectReason')));
    const reason = el('input', { id, autocomplete: 'off' });
    item.append(reason);
    const reject = el('button', { type: 'button', 'data-action': 'reject' }, t('supervision.reject'));
    reject.addEventListener('click', () => {
      if (!reason.value.trim()) { notice(t('control.needReason')); reason.focus(); return; }
      review(r, 'reject', { reason: reason.value.trim() });
    });
    item.append(reject);
    list.append(item);
  }
  $('closures-empty').hidden = items.length > 0;
}

async function review(r, verb, body) {
  try {
    const out = await api('POST', `/crimes/${r.id}/closure/${verb}`, body);
    await refreshDesk(false, out.position);
    delete $('closures').dataset.ids;
    await refreshSupervision();
    notice(t(verb === 'approve' ? 'supervision.approved' : 'supervision.rejected', { title: r.title }));
  } catch (e) { notice(t('error', { detail: e.message })); }
}

function renderBreaches(items) {
  const body = $('breaches').tBodies[0];
  body.replaceChildren();
  for (const b of items) {
    const report = state.reports.find((r) => r.id === b.id);
    const patrol = b.patrol_id && state.patrols.get(b.patrol_id);
    const row = el('tr', { 'data-id': b.id, 'data-kind': b.kind, tabindex: '0' });
    row.append(el('td', {}, t(`supervision.${b.kind}`)));
    row.append(el('td', { class: 'title' }, report ? report.title : b.id));
    row.append(el('td', {}, b.status));
    row.append(el('td', {}, patrol ? patrol.call_sign : (b.patrol_id || t('none'))));
    const m = Math.floor(b.overdue_by_secs / 60);
    row.append(el('td', { class: 'sla-red' }, `${m}m ${b.overdue_by_secs % 60}s`));
    const open = () => { showTab('desk-panel'); openReport(b.id); };
    row.addEventListener('click', open);
    row.addEventListener('keydown', (e) => { if (e.key === 'Enter') open(); });
    body.append(row);
  }
  $('breaches-empty').hidden = items.length > 0;
}

// ---- set-up (ADMIN) --------------------------------------------------------------------

async function loadSetup(minPosition) {
  if (state.user.role !== 'ADMIN') return;
  try {
    state.staff = state.station
      ? (await api('GET', `/users?station_id=${state.station}&limit=100`, undefined, minPosition)).items
      : [];
  } catch (e) { if (e.status !== 401) notice(t('error', { detail: e.message })); }
  renderSetup();
}

function renderSetup() {
  const stations = $('stations-list');
  stations.replaceChildren();
  for (const s of state.allStations) {
    const extra = [s.kind, s.area ? t('setup.withArea') : null, s.active === false ? t('setup.inactive') : null].filter(Boolean);
    stations.append(el('li', { 'data-id': s.id }, `${s.name} (${extra.join(', ')})`));
  }
  const staff = $('staff-list');
  staff.replaceChildren();
  for (const a of state.staff) {
    const extra = [a.role, a.active === false ? t('setup.inactive') : null].filter(Boolean);
    staff.append(el('li', { 'data-id': a.id }, `${a.name || t('none')} · ${a.email || t('none')} (${extra.join(', ')})`));
  }
  const crew = $('pf-officers');
  const chosen = new Set([...crew.querySelectorAll('input:checked')].map((i) => i.value));
  for (const node of [...crew.children]) if (node.tagName !== 'LEGEND') node.remove();
  const officers = state.staff.filter((a) => a.role === 'PATROL' && a.active !== false);
  for (const a of officers) {
    const id = `crew-${a.id}`;
    const box = el('input', { type: 'checkbox', id, value: a.id });
    box.checked = chosen.has(a.id);
    const label = el('label', { for: id, class: 'check' });
    label.append(box, document.createTextNode(` ${a.name || a.email || a.id}`));
    crew.append(label);
  }
  if (!officers.length) crew.append(el('p', {}, t('setup.noOfficers')));
  const patrols = $('patrols-list');
  patrols.replaceChildren();
  for (const p of state.patrols.values()) {
    patrols.append(el('li', { 'data-id': p.id }, `${p.call_sign} (${p.status}, ${t('setup.crewCount', { n: (p.officer_ids || []).length })})`));
  }
}

// A square of `km` kilometres centred on the point, as a GeoJSON polygon.
function squareArea(lat, lon, km) {
  const dLat = km / 2 / 111.32;
  const dLon = dLat / Math.max(Math.cos(lat * Math.PI / 180), 0.01);
  const ring = [[lon - dLon, lat - dLat], [lon + dLon, lat - dLat], [lon + dLon, lat + dLat], [lon - dLon, lat + dLat]];
  return { type: 'Polygon', coordinates: [[...ring, ring[0]].map(([x, y]) => [Number(x.toFixed(6)), Number(y.toFixed(6))])] };
}

async function createStation(event) {
  event.preventDefault();
  const num = (id) => ($(id).value.trim() === '' ? null : Number($(id).value));
  const body = { name: $('st-name').value.trim(), kind: $('st-kind').value };
  const [lat, lon, km] = [num('st-lat'), num('st-lon'), num('st-size')];
  if (lat !== null || lon !== null) { body.latitude = lat; body.longitude = lon; }
  if (lat !== null && lon !== null && km) body.area = squareArea(lat, lon, km);
  const types = $('st-types').value.split(',').map((x) => x.trim()).filter(Boolean);
  if (types.length) body.crime_types = types;
  try {
    const out = await api('POST', '/stations', body);
    $('station-form').reset();
    await loadStations(out.id, out.position);
    followDesk();
    await refreshDesk(true, out.position);
    await loadSetup(out.position);
    notice(t('setup.stationCreated', { name: out.name }));
  } catch (e) { notice(t('error', { detail: e.message })); }
}

async function createStaff(invite) {
  if (!state.station) { notice(t('setup.noStation')); return; }
  const email = $('sf-email').value.trim();
  const role = $('sf-role').value;
  $('sf-result').textContent = '';
  try {
    if (invite || !$('sf-password').value) {
      const out = await api('POST', '/invites', { email, role, station_id: state.station });
      $('sf-result').textContent = t('setup.inviteCode', { email: out.email, until: out.expires_at, code: out.code });
      notice('');
    } else {
      const out = await api('POST', '/users/register', {
        email, role, station_id: state.station, name: $('sf-name').value.trim(), password: $('sf-password').value,
      });
      await loadSetup(out.position);
      notice(t('setup.accountCreated', { email: out.email, role: out.role }));
    }
    $('staff-form').reset();
  } catch (e) { notice(t('error', { detail: e.message })); }
}

async function createPatrol(event) {
  event.preventDefault();
  if (!state.station) { notice(t('setup.noStation')); return; }
  const officers = [...$('pf-officers').querySelectorAll('input:checked')].map((i) => i.value);
  try {
    const out = await api('POST', '/patrols/register', {
      call_sign: $('pf-call-sign').value.trim(), station_id: state.station, officer_ids: officers,
    });
    $('patrol-form').reset();
    await refreshDesk(true, out.position);
    renderSetup();
    notice(t('setup.patrolCreated', { call_sign: out.call_sign }));
  } catch (e) { notice(t('error', { detail: e.message })); }
}

// An invitee creates their account with the code they were given, then signs in.
async function acceptInvite(event) {
  event.preventDefault();
  $('invite-result').textContent = '';
  try {
    const out = await api('POST', '/invites/accept', {
      code: $('invite-code').value.trim(), name: $('invite-name').value.trim(), password: $('invite-password').value,
    });
    $('invite-form').reset();
    $('email').value = out.email;
    $('invite-result').textContent = t('invite.done', { email: out.email });
  } catch (e) { $('invite-result').textContent = t('error', { detail: e.message }); }
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
  if (r.status === 'ACCEPTED' || r.status === 'RESPONDING') {
    // What the crew found: notes and links to evidence, shown as text only.
    for (const n of r.notes || []) item.append(el('p', { class: 'note' }, n.note));
    for (const e of r.evidence || []) item.append(el('p', { class: 'evidence' }, `${e.media_type}: ${e.url}`));
    const note = input('note');
    button('addNote', () => { if (note.value.trim()) act('notes', { note: note.value.trim() }); });
    const link = input('evidence');
    const kindId = `kind-${r.id}`;
    item.append(el('label', { for: kindId }, t('inbox.mediaType')));
    const kind = el('select', { id: kindId });
    for (const k of ['PHOTO', 'VIDEO', 'AUDIO', 'DOCUMENT']) kind.append(el('option', { value: k }, k));
    item.append(kind);
    button('attach', () => { if (link.value.trim()) act('evidence', { url: link.value.trim(), media_type: kind.value }); });
  }
  return item;
}

document.addEventListener('DOMContentLoaded', start);
