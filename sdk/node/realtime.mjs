// Appwrite's web SDK realtime in headless Chromium (Debian's, never a downloaded one), on
// a page served from another origin than `permdb serve`: the page signs in as user-a and
// subscribes (Realtime service, with and without a query, and client.subscribe); this
// process changes notes with an API key. user-a must receive only her notes, see a note
// enter when she is granted it and leave when the grant is taken back. Exits non-zero,
// saying why, on any difference; leaves a screenshot.
//
// node realtime.mjs OUT_DIR   (PERMDB_ENDPOINT, PERMDB_KEY as for check.mjs; the server was
// started with --cors-origin http://localhost:PAGE_PORT; PAGE_PORT from env)
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { Client, Databases, Permission, Role, Users } from 'node-appwrite';

const [out] = process.argv.slice(2);
const endpoint = process.env.PERMDB_ENDPOINT;
// The page reaches the API as localhost, the page's own site, so that the session cookie
// (SameSite=Lax) goes with its requests and the WebSocket handshake.
const api = endpoint.replace(/\/v1$/, '').replace('127.0.0.1', 'localhost');
const port = Number(process.env.PAGE_PORT ?? 18082);
const admin = new Client().setEndpoint(endpoint).setProject('default').setKey(process.env.PERMDB_KEY);
const databases = new Databases(admin);
const users = new Users(admin);

await databases.create({ databaseId: 'rt', name: 'Realtime' });
await databases.createCollection({ databaseId: 'rt', collectionId: 'notes', name: 'Notes', documentSecurity: true });
await databases.createStringAttribute({ databaseId: 'rt', collectionId: 'notes', key: 'title', size: 100, required: false });
for (const letter of ['a', 'b']) {
  await users.create({ userId: `user-${letter}`, email: `${letter}@example.com`, password: `password-${letter}` });
}
const readers = (...ids) => ids.map((id) => Permission.read(Role.user(id)));
const note = (documentId, title, ...ids) => databases.createDocument({
  databaseId: 'rt', collectionId: 'notes', documentId, data: { title }, permissions: readers(...ids),
});
const share = (documentId, ...ids) => databases.updateDocument({
  databaseId: 'rt', collectionId: 'notes', documentId, permissions: readers(...ids),
});

const here = new URL('.', import.meta.url).pathname;
const files = {
  '/': ['text/html', readFileSync(join(here, 'page/realtime.html'))],
  '/sdk.js': ['text/javascript', readFileSync(join(here, 'node_modules/appwrite/dist/iife/sdk.js'))],
};
const pages = createServer((req, res) => {
  const file = files[new URL(req.url, 'http://x').pathname];
  if (!file) { res.writeHead(req.url === '/favicon.ico' ? 204 : 404).end(); return; }
  res.writeHead(200, { 'content-type': file[0] }).end(file[1]);
});
await new Promise((ok) => pages.listen(port, 'localhost', ok));

const fail = (why) => { console.error('FAIL ' + why); process.exitCode = 1; };
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
  page.on('console', (m) => console.log('page: ' + m.text()));
  await page.goto(`http://localhost:${port}/?api=${encodeURIComponent(api)}`);
  await page.waitForFunction(() => window.ready || window.failed, null, { timeout: 30000 });
  const failed = await page.evaluate(() => window.failed);
  if (failed) throw new Error('the page failed: ' + failed);
  const seen = () => page.evaluate(() => window.seen);
  const until = async (what, test) => {
    const deadline = Date.now() + 15000;
    while (Date.now() < deadline) {
      if (test(await seen())) return;
      await new Promise((ok) => setTimeout(ok, 100));
    }
    throw new Error('timed out waiting for ' + what + '; seen ' + JSON.stringify(await seen()));
  };
  // The SDK sends its subscriptions once the server says `connected`: notes are written
  // until the page has heard one, so the checks below start with every subscription live.
  const heard = (s, via) => s.some((e) => e.via === via);
  for (let i = 0; ; i++) {
    const s = await seen();
    if (heard(s, 'realtime') && heard(s, 'client.subscribe')) break;
    if (i === 100) throw new Error('no warm-up note reached both paths: ' + JSON.stringify(s));
    await note(`warm${i}`, `warm-up ${i}`, 'user-a');
    await new Promise((ok) => setTimeout(ok, 100));
  }
  // Both paths have every warm-up note after the last one written.
  await new Promise((ok) => setTimeout(ok, 300));
  const start = (await seen()).length;

  await note('for-a', 'for a', 'user-a');
  await note('for-b', 'for b', 'user-b');
  await note('urgent-a', 'urgent', 'user-a');
  await share('for-b', 'user-b', 'user-a');   // enters user-a's view
  await share('for-b', 'user-b');             // and leaves it
  await note('last', 'last', 'user-a');
  await until('the last note', (s) => s.filter((e) => e.id === 'last').length === 2);
  const events = (await seen()).slice(start);
  console.log('events: ' + JSON.stringify(events));
  const by = (via) => events.filter((e) => e.via === via).map((e) => [e.event.split('.').slice(-2).join('.'), e.title]);
  const want = [
    ['for-a.create', 'for a'], ['urgent-a.create', 'urgent'],
    ['for-b.update', 'for b'], ['for-b.delete', null], ['last.create', 'last'],
  ];
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
  if (!same(by('realtime'), want)) fail('Realtime service: ' + JSON.stringify(by('realtime')) + ', want ' + JSON.stringify(want));
  if (!same(by('client.subscribe'), want)) fail('client.subscribe: ' + JSON.stringify(by('client.subscribe')));
  if (!same(by('urgent'), [['urgent-a.create', 'urgent']])) fail('the query subscription: ' + JSON.stringify(by('urgent')));
  if (events.some((e) => e.via === 'error')) fail('errors reached the page');
  if (events.some((e) => e.title === 'for b' && e.event.endsWith('.create'))) fail("user-b's note reached user-a when it was made");
  if (events.some((e) => e.channels !== 16 || e.subscriptions < 1)) fail('an event without 16 channels or its subscriptions');
  // One frame per change on a connection: the urgent note names both of the Realtime
  // service's subscriptions (when the two rows' events are taken together, as here).
  const urgent = events.find((e) => e.via === 'urgent');
  if (urgent && urgent.subscriptions !== 2) console.log('note: the urgent note came in separate frames');
  const held = await page.evaluate(() => document.getElementById('notes').textContent);
  if (held.includes('for-b')) fail('the page still holds for-b after it left: ' + held);
  await page.screenshot({ path: join(out, 'realtime.png'), fullPage: true });
} catch (e) {
  fail(e.message);
} finally {
  await browser.close();
  pages.close();
}
if (!process.exitCode) console.log('the realtime flow passed; screenshot in ' + join(out, 'realtime.png'));
