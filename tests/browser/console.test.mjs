// The console in a real browser (Debian's Chromium, headless, driven by playwright-core;
// no browser is downloaded). Run by deploy/local/browser-tests.sh against a real
// `precinct serve` (fresh database and streams): BASE, ADMIN_EMAIL, ADMIN_PASSWORD and
// SCREENSHOTS come from there. The steps build on each other, in order.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';

const BASE = process.env.BASE;
const SHOTS = process.env.SCREENSHOTS;
const PASSWORD = 'console-test-password';
const LAT = 52.52;
const LON = 13.4;
const XSS = '<img src=x onerror="window.__xss=1">Bike javascript:alert(1)';
const STEP = 15_000; // the longest any one expectation may wait

let browser;
const requests = [];
const world = {};

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

async function account(admin, role, name, station) {
  const email = `${name}@console.test`;
  const a = await ok('POST', '/users/register', admin, { email, password: PASSWORD, name, role, station_id: station });
  return { id: a.id, email, position: a.position };
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

async function signIn(page, email) {
  await page.goto(`${BASE}/console`);
  await page.fill('#email', email);
  await page.fill('#password', PASSWORD);
  await page.click('#login-submit');
}

before(async () => {
  assert.ok(BASE && SHOTS, 'BASE and SCREENSHOTS are set');
  mkdirSync(SHOTS, { recursive: true });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
  const admin = await login(process.env.ADMIN_EMAIL);
  const half = 0.05;
  const station = await ok('POST', '/stations', admin, {
    name: 'Mitte', kind: 'PRECINCT', latitude: LAT, longitude: LON,
    area: { type: 'Polygon', coordinates: [[[LON - half, LAT - half], [LON + half, LAT - half],
      [LON + half, LAT + half], [LON - half, LAT + half], [LON - half, LAT - half]]] },
  });
  world.station = station.id;
  const dispatcher = await account(admin, 'DISPATCHER', 'dispatcher', station.id);
  const officer = await account(admin, 'PATROL', 'officer', station.id);
  world.dispatcher = dispatcher.email;
  world.officer = officer.email;
  const patrol = await ok('POST', '/patrols/register', admin, { call_sign: 'ALPHA-1', station_id: station.id, officer_ids: [officer.id] });
  world.patrol = patrol.id;
  // A second crew, with no position yet: automatic assignment ranks both.
  const second = await account(admin, 'PATROL', 'second', station.id);
  const bravo = await ok('POST', '/patrols/register', admin, { call_sign: 'BRAVO-2', station_id: station.id, officer_ids: [second.id] });
  world.bravo = bravo.id;
  world.officerToken = await login(officer.email);
  const moved = await moveTo(LAT - 0.02, LON - 0.02);
  world.admin = admin;
  world.lastPosition = patrol.position;
  // The read models include the patrol before the desk opens.
  await ok('GET', `/patrols/${bravo.id}`, admin, undefined, bravo.position);
  assert.ok(moved.position > 0);
});

after(async () => {
  if (browser) await browser.close();
});

test('the console, end to end in Chromium', async (t) => {
  const desk = await context('dispatcher');
  const officer = await context('officer');

  await t.test('the console is served with a strict CSP', async () => {
    const res = await desk.page.goto(`${BASE}/console`);
    const csp = res.headers()['content-security-policy'];
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
    await desk.page.waitForSelector('#login-view:not([hidden])', { timeout: STEP });
    await shot(desk.page, '01-login');
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

  await t.test('signing out revokes the session', async () => {
    const token = (await desk.ctx.cookies()).find((c) => c.name === 'precinct_session').value;
    await desk.page.click('#logout');
    await desk.page.waitForSelector('#login-view:not([hidden])', { timeout: STEP });
    assert.equal((await desk.ctx.cookies()).some((c) => c.name === 'precinct_session'), false);
    const replayed = await fetch(`${BASE}/session`, { headers: { Cookie: `precinct_session=${token}` } });
    assert.equal(replayed.status, 401);
  });

  await t.test('the pages asked nothing of any other host and raised no error', async () => {
    const origin = new URL(BASE).origin;
    const errors = requests.filter((r) => r.error);
    assert.deepEqual(errors, []);
    const foreign = requests.filter((r) => r.url && new URL(r.url).origin !== origin);
    assert.deepEqual(foreign, []);
    assert.ok(requests.length > 10, `only ${requests.length} requests seen`);
  });

  await desk.ctx.close();
  await officer.ctx.close();
});
