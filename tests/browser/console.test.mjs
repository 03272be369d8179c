// The console in a real browser (Debian's Chromium, headless, driven by playwright-core;
// no browser is downloaded). Run by deploy/local/browser-tests.sh against a real
// `precinct serve` (fresh database and streams): BASE, ADMIN_EMAIL, ADMIN_PASSWORD and
// SCREENSHOTS come from there. The steps build on each other, in order: the server
// starts empty, and the admin sets up the station, its staff and patrols in the console.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { chromium } from 'playwright-core';

const BASE = process.env.BASE;
const SHOTS = process.env.SCREENSHOTS;
const PASSWORD = 'console-test-password';
const LAT = 52.52;
const LON = 13.4;
const XSS = '<img src=x onerror="window.__xss=1">Bike javascript:alert(1)';
const STEP = 15_000; // the longest any one expectation may wait

let browser;
let tileServer;
const requests = [];
const tileRequests = [];
const world = {};
// The tile layer the server was started with (PRECINCT_MAP_TILES), served here: a
// one-pixel light grey PNG for every tile.
const TILES = `http://127.0.0.1:${process.env.TILES_PORT}`;
const PIXEL = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGN4+fYJAAV9ArsPq/7VAAAAAElFTkSuQmCC', 'base64');

// ---- the API, as a client (bearer tokens), to set the scene --------------------------

async function call(method, path, token, body, minPosition) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (minPosition) headers['X-Min-Position'] = String(minPosition);
  const res = await fetch(BASE + path, { method, headers, body: body && JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

async function ok(method, path, token, body, minPosition) {
  const r = await call(method, path, token, body, minPosition);
  assert.ok(r.status >= 200 && r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

async function login(email) {
  const password = email === process.env.ADMIN_EMAIL ? process.env.ADMIN_PASSWORD : PASSWORD;
  return (await ok('POST', '/users/login', null, { email, password })).access_token;
}

async function moveTo(lat, lon) {
  return ok('PUT', `/patrols/${world.patrol}/location`, world.officerToken, { latitude: lat, longitude: lon });
}

// ---- the browser ------------------------------------------------------------------------

async function context(name) {
  const ctx = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await ctx.newPage();
  page.on('request', (r) => requests.push({ who: name, url: r.url() }));
  page.on('pageerror', (e) => requests.push({ who: name, error: String(e) }));
  return { ctx, page };
}

async function shot(page, name) {
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

async function signIn(page, email, password = PASSWORD) {
  await page.goto(`${BASE}/console`);
  await page.fill('#email', email);
  await page.fill('#password', password);
  await page.click('#login-submit');
}

// The `data-id` of the list item of `list` whose text contains `text`, once it shows.
async function itemId(page, list, text) {
  const item = page.locator(`${list} li`, { hasText: text });
  await item.first().waitFor({ timeout: STEP });
  return item.first().getAttribute('data-id');
}

// Fills and submits the set-up form of a staff member of the chosen station.
async function addStaff(page, name, role) {
  const email = `${name}@console.test`;
  await page.fill('#sf-email', email);
  await page.fill('#sf-name', name);
  await page.selectOption('#sf-role', role);
  await page.fill('#sf-password', PASSWORD);
  await page.click('#sf-create');
  return { id: await itemId(page, '#staff-list', email), email };
}

async function addPatrol(page, callSign, officerId) {
  await page.fill('#pf-call-sign', callSign);
  await page.check(`#pf-officers input[value="${officerId}"]`);
  await page.click('#pf-create');
  return itemId(page, '#patrols-list', callSign);
}

before(async () => {
  assert.ok(BASE && SHOTS && process.env.TILES_PORT, 'BASE, SCREENSHOTS and TILES_PORT are set');
  mkdirSync(SHOTS, { recursive: true });
  tileServer = createServer((req, res) => {
    tileRequests.push(req.url);
    const ok = /^\/tiles\/\d+\/\d+\/\d+\.png$/.test(req.url);
    res.writeHead(ok ? 200 : 404, { 'Content-Type': 'image/png', 'Access-Control-Allow-Origin': '*' });
    res.end(ok ? PIXEL : undefined);
  });
  await new Promise((done) => tileServer.listen(Number(process.env.TILES_PORT), '127.0.0.1', done));
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
  world.admin = await login(process.env.ADMIN_EMAIL);
  // The server starts empty: no station, no staff, no patrol.
  const stations = await ok('GET', '/stations', world.admin);
  assert.deepEqual(stations.items, []);
});

after(async () => {
  if (browser) await browser.close();
  if (tileServer) tileServer.close();
});

test('the console, end to end in Chromium', async (t) => {
  const admin = await context('admin');
  const desk = await context('dispatcher');
  const officer = await context('officer');
  const supervisor = await context('supervisor');

  await t.test('the console is served with a strict CSP', async () => {
    const res = await desk.page.goto(`${BASE}/console`);
    const csp = res.headers()['content-security-policy'];
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
    // Images from the configured tile host besides this origin; nothing else.
    assert.match(csp, new RegExp(`img-src 'self' ${TILES};`));
    assert.match(csp, /connect-src 'self';/);
    await desk.page.waitForSelector('#login-view:not([hidden])', { timeout: STEP });
    await shot(desk.page, '01-login');
  });

  await t.test('the admin creates a station, its staff and its patrols in the console', async () => {
    const page = admin.page;
    await signIn(page, process.env.ADMIN_EMAIL, process.env.ADMIN_PASSWORD);
    await page.waitForSelector('#desk-view:not([hidden])', { timeout: STEP });
    await page.click('#tabs [data-tab="setup-panel"]');
    await page.waitForSelector('#setup-panel:not([hidden])', { timeout: STEP });
    // The station, with an area of 11 km around its point.
    await page.fill('#st-name', 'Mitte');
    await page.fill('#st-lat', String(LAT));
    await page.fill('#st-lon', String(LON));
    await page.fill('#st-size', '11');
    await page.click('#st-create');
    world.station = await itemId(page, '#stations-list', 'Mitte');
    assert.equal(await page.locator('#station').inputValue(), world.station);
    const station = await ok('GET', `/stations/${world.station}`, world.admin);
    assert.equal(station.kind, 'PRECINCT');
    assert.equal(station.area.type, 'Polygon');
    // Its staff: a dispatcher and two officers with passwords, a supervisor invited.
    world.dispatcher = (await addStaff(page, 'dispatcher', 'DISPATCHER')).email;
    const officerAccount = await addStaff(page, 'officer', 'PATROL');
    world.officer = officerAccount.email;
    const second = await addStaff(page, 'second', 'PATROL');
    await page.fill('#sf-email', 'supervisor@console.test');
    await page.selectOption('#sf-role', 'SUPERVISOR');
    await page.click('#sf-invite');
    await page.waitForFunction(() => /: [0-9a-zA-Z_-]{16,}$/.test(document.getElementById('sf-result').textContent), null, { timeout: STEP });
    world.inviteCode = (await page.locator('#sf-result').textContent()).split(': ').pop();
    // Its patrols: ALPHA-1 crewed by the officer, BRAVO-2 by the second officer.
    world.patrol = await addPatrol(page, 'ALPHA-1', officerAccount.id);
    world.bravo = await addPatrol(page, 'BRAVO-2', second.id);
    const patrol = await ok('GET', `/patrols/${world.patrol}`, world.admin);
    assert.deepEqual([patrol.station_id, patrol.officer_ids], [world.station, [officerAccount.id]]);
    await shot(page, '00-setup');
    // ALPHA-1 reports a position before the desk opens.
    world.officerToken = await login(world.officer);
    const moved = await moveTo(LAT - 0.02, LON - 0.02);
    assert.ok(moved.position > 0);
  });

  await t.test('the invited supervisor creates their account with the code and signs in', async () => {
    const page = supervisor.page;
    await page.goto(`${BASE}/console`);
    await page.click('#invite-accept summary');
    await page.fill('#invite-code', world.inviteCode);
    await page.fill('#invite-name', 'supervisor');
    await page.fill('#invite-password', PASSWORD);
    await page.click('#invite-submit');
    await page.waitForFunction(() => document.getElementById('invite-result').textContent.includes('supervisor@console.test'), null, { timeout: STEP });
    await page.fill('#password', PASSWORD);
    await page.click('#login-submit');
    await page.waitForSelector('#desk-view:not([hidden])', { timeout: STEP });
    assert.equal(await page.locator('#tabs [data-tab="supervision-panel"]').isVisible(), true);
    assert.equal(await page.locator('#tabs [data-tab="setup-panel"]').isVisible(), false);
  });

  await t.test('the dispatcher signs in; the cookies are HttpOnly and SameSite=Strict', async () => {
    await signIn(desk.page, world.dispatcher);
    await desk.page.waitForSelector('#desk-view:not([hidden])', { timeout: STEP });
    const cookies = await desk.ctx.cookies();
    const session = cookies.find((c) => c.name === 'precinct_session');
    const csrf = cookies.find((c) => c.name === 'precinct_csrf');
    assert.ok(session && csrf, JSON.stringify(cookies));
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    // Plain HTTP on loopback (development): not Secure, by design (ADR 0029).
    assert.equal(session.secure, false);
    assert.equal(csrf.httpOnly, false);
    assert.equal(csrf.sameSite, 'Strict');
    // The page's script cannot read the session token.
    const visible = await desk.page.evaluate(() => document.cookie);
    assert.ok(!visible.includes('precinct_session'), visible);
    await desk.page.waitForSelector('#map circle.patrol', { timeout: STEP });
  });

  await t.test('the officer signs in, in a second browser context', async () => {
    await signIn(officer.page, world.officer);
    await officer.page.waitForSelector('#officer-view:not([hidden])', { timeout: STEP });
    await officer.page.waitForSelector('#inbox-empty:not([hidden])', { timeout: STEP });
  });

  await t.test('a report submitted through the API appears in the queue without reload, as text', async () => {
    const report = await ok('POST', '/crimes', null, {
      title: XSS, description: 'Taken from the rack <script>window.__xss=2</script>',
      crime_types: ['Theft'], location: { latitude: LAT + 0.01, longitude: LON + 0.01, street: '1 Main St', city: 'Berlin' },
    });
    world.report = report.id;
    const row = desk.page.locator(`#queue tr[data-id="${report.id}"]`);
    await row.waitFor({ timeout: STEP });
    assert.equal(await row.locator('td.title').textContent(), XSS);
    assert.equal(await desk.page.locator('#queue img').count(), 0);
    assert.equal(await desk.page.evaluate(() => window.__xss), undefined);
    await desk.page.waitForSelector(`#map circle.pin[data-id="${report.id}"]`, { timeout: STEP });
    // The map draws the tile layer under the area, pins and patrols.
    await desk.page.waitForFunction(() => document.querySelectorAll('#map-tiles image').length > 0, null, { timeout: STEP });
    const hrefs = await desk.page.locator('#map-tiles image').evaluateAll((images) => images.map((i) => i.getAttribute('href')));
    assert.ok(hrefs.length > 0 && hrefs.length <= 40, JSON.stringify(hrefs));
    for (const h of hrefs) assert.match(h, new RegExp(`^${TILES}/tiles/\\d+/\\d+/\\d+\\.png$`));
    for (let i = 0; i < 100 && !tileRequests.length; i++) await new Promise((done) => setTimeout(done, 100));
    assert.ok(tileRequests.length > 0, 'the browser fetched the tiles');
    await shot(desk.page, '02-queue');
  });

  await t.test('the dispatcher opens the report and dispatches it by hand', async () => {
    await desk.page.click(`#queue tr[data-id="${world.report}"]`);
    await desk.page.waitForSelector('#report-panel:not([hidden])', { timeout: STEP });
    assert.equal(await desk.page.locator('#report-title').textContent(), XSS);
    await desk.page.selectOption('#patrol', world.patrol);
    await desk.page.click('#dispatch');
    await desk.page.waitForFunction(
      () => [...document.querySelectorAll('#report-details dd')].some((d) => d.textContent === 'ASSIGNED'),
      null, { timeout: STEP },
    );
    assert.equal(await desk.page.locator('#report-panel img').count(), 0);
    await shot(desk.page, '03-dispatched');
  });

  await t.test('the officer receives the assignment live and accepts it', async () => {
    const item = officer.page.locator(`#inbox li[data-id="${world.report}"]`);
    await item.waitFor({ timeout: STEP });
    assert.equal(await item.locator('.title').textContent(), XSS);
    await shot(officer.page, '04-officer-inbox');
    await item.locator('button[data-action="accept"]').click();
    await officer.page.waitForFunction(
      (id) => document.querySelector(`#inbox li[data-id="${id}"] .status`)?.textContent.startsWith('ACCEPTED'),
      world.report, { timeout: STEP },
    );
    assert.equal(await officer.page.evaluate(() => window.__xss), undefined);
    await shot(officer.page, '05-officer-accepted');
  });

  await t.test('the officer adds a note and evidence, shown as text only', async () => {
    const page = officer.page;
    const id = world.report;
    const note = '<img src=x onerror="window.__xss=5">Witness at the kiosk';
    const link = 'https://evidence.example/photo.jpg?<script>window.__xss=6</script>';
    await page.fill(`#note-${id}`, note);
    await page.click(`#inbox li[data-id="${id}"] button[data-action="addNote"]`);
    await page.locator(`#inbox li[data-id="${id}"] .note`, { hasText: 'Witness at the kiosk' }).waitFor({ timeout: STEP });
    await page.fill(`#evidence-${id}`, link);
    await page.selectOption(`#kind-${id}`, 'PHOTO');
    await page.click(`#inbox li[data-id="${id}"] button[data-action="attach"]`);
    await page.locator(`#inbox li[data-id="${id}"] .evidence`).waitFor({ timeout: STEP });
    assert.equal(await page.locator(`#inbox li[data-id="${id}"] .note`).textContent(), note);
    assert.equal(await page.locator(`#inbox li[data-id="${id}"] .evidence`).textContent(), `PHOTO: ${link}`);
    assert.equal(await page.locator('#inbox a, #inbox img, #inbox script').count(), 0);
    assert.equal(await page.evaluate(() => window.__xss), undefined);
    const report = await ok('GET', `/crimes/${id}`, world.admin);
    assert.deepEqual([report.notes.map((n) => n.note), report.evidence.map((e) => e.url)], [[note], [link]]);
  });

  await t.test("the patrol moves and the dispatcher's map dot moves", async () => {
    const dot = desk.page.locator(`#map circle.patrol[data-id="${world.patrol}"]`);
    const before = [await dot.getAttribute('cx'), await dot.getAttribute('cy')];
    await moveTo(LAT + 0.03, LON + 0.03);
    await desk.page.waitForFunction(
      ([id, x, y]) => {
        const c = document.querySelector(`#map circle.patrol[data-id="${id}"]`);
        return c && (c.getAttribute('cx') !== x || c.getAttribute('cy') !== y);
      },
      [world.patrol, ...before], { timeout: STEP },
    );
    world.movedTo = [await dot.getAttribute('cx'), await dot.getAttribute('cy')];
    await shot(desk.page, '06-map-moved');
  });

  await t.test('the replay slider shows the report as it stood before dispatch', async () => {
    await desk.page.click(`#queue tr[data-id="${world.report}"]`);
    await desk.page.waitForFunction(() => Number(document.getElementById('replay').max) >= 2, null, { timeout: STEP });
    await desk.page.waitForFunction(() => document.getElementById('replay-status').textContent === 'ACCEPTED', null, { timeout: STEP });
    await desk.page.locator('#replay').fill('0');
    await desk.page.waitForFunction(() => document.getElementById('replay-status').textContent === 'NEW', null, { timeout: STEP });
    // The crew's note and evidence link, in the staff view, as text.
    const details = await desk.page.locator('#report-details').textContent();
    assert.ok(details.includes('Witness at the kiosk') && details.includes('https://evidence.example/photo.jpg?<script>'), details);
    assert.equal(await desk.page.locator('#report-panel a, #report-panel img, #report-panel script').count(), 0);
    await shot(desk.page, '07-replay');
  });

  await t.test('automatic dispatch shows the ranked candidates the policy recorded', async () => {
    const report = await ok('POST', '/crimes', null, {
      title: 'Window smashed', description: 'Shop window', crime_types: ['Vandalism'],
      location: { latitude: LAT - 0.01, longitude: LON - 0.01, street: '2 Main St', city: 'Berlin' },
    });
    const row = desk.page.locator(`#queue tr[data-id="${report.id}"]`);
    await row.waitFor({ timeout: STEP });
    await row.click();
    await desk.page.waitForFunction((title) => document.getElementById('report-title').textContent === title, 'Window smashed', { timeout: STEP });
    await desk.page.click('#auto');
    await desk.page.waitForSelector('#candidates li', { timeout: STEP });
    const ranked = await desk.page.locator('#candidates li').allTextContents();
    // ALPHA-1 is busy with the first report: BRAVO-2 is the one available, ranked first.
    assert.match(ranked[0], /^#1 BRAVO-2: /, JSON.stringify(ranked));
    await desk.page.waitForFunction(
      () => [...document.querySelectorAll('#report-details dd')].some((d) => d.textContent === 'BRAVO-2'),
      null, { timeout: STEP },
    );
    // The read model's older position does not pull the dot back after the refresh.
    const dot = desk.page.locator(`#map circle.patrol[data-id="${world.patrol}"]`);
    assert.deepEqual([await dot.getAttribute('cx'), await dot.getAttribute('cy')], world.movedTo);
    await shot(desk.page, '08-auto-dispatch');
    world.second = report.id;
  });

  await t.test('the dispatcher triages, notes, reassigns and takes back the report in its panel', async () => {
    const page = desk.page;
    const detail = (text) => page.waitForFunction(
      (x) => [...document.querySelectorAll('#report-details dd')].some((d) => d.textContent === x), text, { timeout: STEP },
    );
    await page.selectOption('#control-priority', 'HIGH');
    await page.click('#control-triage');
    await detail('HIGH');
    await page.fill('#control-note', '<b>seen</b> near the bakery');
    await page.click('#control-add-note');
    await detail('<b>seen</b> near the bakery');
    // A reason is needed: without one nothing is sent.
    await page.click('#control-reassign');
    await page.waitForFunction(() => document.getElementById('notice').textContent === 'Give a reason first.', null, { timeout: STEP });
    await page.selectOption('#patrol', world.patrol);
    await page.fill('#control-reason', 'ALPHA-1 is closer');
    await page.click('#control-reassign');
    await detail('ALPHA-1');
    await page.fill('#control-reason', 'wrong crew');
    await page.click('#control-unassign');
    await detail('NEW');
    assert.equal(await page.locator('#report-panel b').count(), 0);
    const history = await ok('GET', `/crimes/${world.second}/history?limit=100`, world.admin);
    const types = history.items.map((h) => h.type);
    for (const type of ['ReportTriaged', 'NoteAdded', 'AssignmentWithdrawn']) assert.ok(types.includes(type), JSON.stringify(types));
    await shot(page, '08b-control');
    // Back to BRAVO-2, which leaves it unaccepted past the accept deadline (SLA).
    await page.click('#auto');
    await detail('BRAVO-2');
  });

  await t.test('a write without the CSRF header is refused with 403 problem+json', async () => {
    const answer = await desk.page.evaluate(async (id) => {
      const res = await fetch('/crimes/' + id + '/notes', {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ note: 'forged' }),
      });
      return { status: res.status, type: res.headers.get('content-type') };
    }, world.report);
    assert.deepEqual(answer, { status: 403, type: 'application/problem+json' });
  });

  await t.test('the catalogue switches to Spanish', async () => {
    await desk.page.selectOption('#lang', 'es');
    assert.equal(await desk.page.locator('#queue-heading').textContent(), 'Cola');
    await shot(desk.page, '09-spanish');
    await desk.page.selectOption('#lang', 'en');
  });

  await t.test('the officer resolves; the supervisor sees the SLA breach and approves the closure', async () => {
    const item = officer.page.locator(`#inbox li[data-id="${world.report}"]`);
    await item.locator('button[data-action="respond"]').click();
    await item.locator('button[data-action="resolve"]').waitFor({ timeout: STEP });
    await officer.page.fill(`#notes-${world.report}`, '<img src=x onerror="window.__xss=3">Returned the bike');
    await item.locator('button[data-action="resolve"]').click();
    await officer.page.waitForFunction(
      (id) => document.querySelector(`#inbox li[data-id="${id}"] .status`)?.textContent.startsWith('RESOLVED'),
      world.report, { timeout: STEP },
    );
    const page = supervisor.page;
    await page.click('#tabs [data-tab="supervision-panel"]');
    const closure = page.locator(`#closures li[data-id="${world.report}"]`);
    await closure.waitFor({ timeout: STEP });
    assert.equal(await closure.locator('.title').textContent(), XSS);
    assert.match(await closure.locator('.resolution').textContent(), /<img src=x onerror=/);
    // The second report, assigned to BRAVO-2 and never accepted, is past its deadline.
    await page.waitForSelector(`#breaches tr[data-id="${world.second}"][data-kind="accept"]`, { timeout: 30_000 });
    assert.equal(await page.locator('#supervision-panel img').count(), 0);
    await shot(page, '10-supervision');
    await closure.locator('button[data-action="approve"]').click();
    await closure.waitFor({ state: 'detached', timeout: STEP }).catch(async (e) => {
      throw new Error(`${e.message}; the page said: ${await page.locator('#notice').textContent()}`);
    });
    const closed = await ok('GET', `/crimes/${world.report}`, world.admin);
    assert.equal(closed.status, 'CLOSED');
    assert.equal(await page.evaluate(() => window.__xss), undefined);
  });

  await t.test("another station's dispatcher can neither see nor act on the report", async () => {
    // The admin sets up a second station far away, with its dispatcher.
    await admin.page.fill('#st-name', 'Nord');
    await admin.page.fill('#st-lat', String(LAT + 1));
    await admin.page.fill('#st-lon', String(LON));
    await admin.page.fill('#st-size', '5');
    await admin.page.click('#st-create');
    await itemId(admin.page, '#stations-list', 'Nord');
    const north = await addStaff(admin.page, 'north', 'DISPATCHER');
    const other = await context('north');
    await signIn(other.page, north.email);
    await other.page.waitForSelector('#desk-view:not([hidden])', { timeout: STEP });
    await other.page.waitForSelector('#queue-empty:not([hidden])', { timeout: STEP });
    assert.equal(await other.page.locator('#station').isDisabled(), true, 'a dispatcher sees their own station only');
    assert.equal(await other.page.locator(`#queue tr[data-id="${world.second}"]`).count(), 0);
    assert.equal(await other.page.locator('#map circle').count(), 0, 'no pin, no patrol of Mitte');
    // From the page, with the session cookie and the CSRF header: the API's answers.
    const token = await login(north.email);
    const api = {
      read: (await call('GET', `/crimes/${world.second}`, token)).status,
      triage: (await call('POST', `/crimes/${world.second}/triage`, token, { priority: 'LOW' })).status,
      patrols: (await call('GET', `/patrols/${world.patrol}`, token)).status,
    };
    assert.equal(api.read, 404);
    const page = await other.page.evaluate(async ([report, patrol, station]) => {
      const csrf = document.cookie.split('; ').find((c) => c.startsWith('precinct_csrf=')).slice('precinct_csrf='.length);
      const headers = { 'Content-Type': 'application/json', 'X-Precinct-CSRF': csrf };
      const read = await fetch(`/crimes/${report}`);
      const triage = await fetch(`/crimes/${report}/triage`, { method: 'POST', headers, body: JSON.stringify({ priority: 'LOW' }) });
      const patrols = await fetch(`/patrols/${patrol}`);
      const ctl = new AbortController();
      const stream = await fetch(`/patrols/stream?station_id=${station}`, { signal: ctl.signal });
      const desk = await fetch(`/queues/reports/stream?station_id=${station}`, { signal: ctl.signal });
      ctl.abort();
      return { read: read.status, triage: triage.status, patrols: patrols.status, stream: stream.status, desk: desk.status };
    }, [world.second, world.patrol, world.station]);
    assert.deepEqual(page, { ...api, stream: 403, desk: 403 });
    const still = await ok('GET', `/crimes/${world.second}`, world.admin);
    assert.equal(still.priority, 'HIGH', 'the refused triage changed nothing');
    await shot(other.page, '11-other-station');
    await other.ctx.close();
  });

  await t.test('signing out revokes the session', async () => {
    const token = (await desk.ctx.cookies()).find((c) => c.name === 'precinct_session').value;
    await desk.page.click('#logout');
    await desk.page.waitForSelector('#login-view:not([hidden])', { timeout: STEP });
    assert.equal((await desk.ctx.cookies()).some((c) => c.name === 'precinct_session'), false);
    const replayed = await fetch(`${BASE}/session`, { headers: { Cookie: `precinct_session=${token}` } });
    assert.equal(replayed.status, 401);
  });

  await t.test('the pages asked nothing of any host but the server and its tile host', async () => {
    const origin = new URL(BASE).origin;
    const errors = requests.filter((r) => r.error);
    assert.deepEqual(errors, []);
    const foreign = requests.filter((r) => r.url && new URL(r.url).origin !== origin
      && !(new URL(r.url).origin === TILES && new URL(r.url).pathname.startsWith('/tiles/')));
    assert.deepEqual(foreign, []);
    assert.ok(tileRequests.every((u) => u.startsWith('/tiles/')), JSON.stringify(tileRequests));
    assert.ok(requests.length > 10, `only ${requests.length} requests seen`);
  });

  for (const c of [admin, desk, officer, supervisor]) await c.ctx.close();
});
