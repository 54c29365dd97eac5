// Appwrite's web SDK in headless Chromium (Debian's, never a downloaded one), on a page
// served from another origin than the API: sign-up, sign-in by cookie, a JWT, and the
// backend's /api/user-data with it. Exits non-zero, saying why, on any difference.
//
// node browser.mjs API_URL OUT_DIR   (API_URL: crates/permdb-server/examples/backend.rs, started with
// --cors-origin for this page's origin, http://localhost:PAGE_PORT; PAGE_PORT from env)
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [api, out] = process.argv.slice(2);
const port = Number(process.env.PAGE_PORT ?? 18081);
const here = new URL('.', import.meta.url).pathname;
const files = {
  '/': ['text/html', readFileSync(join(here, 'page/index.html'))],
  '/sdk.js': ['text/javascript', readFileSync(join(here, 'node_modules/appwrite/dist/iife/sdk.js'))],
};
const pages = createServer((req, res) => {
  const file = files[new URL(req.url, 'http://x').pathname];
  if (!file) { res.writeHead(404).end(); return; }
  res.writeHead(200, { 'content-type': file[0] }).end(file[1]);
});
await new Promise((ok) => pages.listen(port, 'localhost', ok));

const fail = (why) => { console.error('FAIL ' + why); process.exitCode = 1; };
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
try {
  const page = await browser.newPage();
  page.on('console', (m) => console.log('page: ' + m.text()));
  await page.goto(`http://localhost:${port}/?api=${encodeURIComponent(api)}`);
  await page.waitForFunction(() => window.result !== undefined, null, { timeout: 30000 });
  const result = await page.evaluate(() => window.result);
  const cookies = await page.context().cookies(api);
  await page.screenshot({ path: join(out, 'browser.png'), fullPage: true });
  console.log('result: ' + JSON.stringify(result));
  console.log('cookies: ' + JSON.stringify(cookies.map((c) => ({ name: c.name, httpOnly: c.httpOnly, sameSite: c.sameSite }))));
  if (result.error) fail('the page failed: ' + result.error);
  if (JSON.stringify(result.names) !== '["Kevin"]') fail('user-a should see only Kevin, saw ' + JSON.stringify(result.names));
  if (result.secret !== '') fail('the page could read the session secret');
  if (result.fallback) fail('the session reached localStorage (X-Fallback-Cookies)');
  if (result.account !== 'user-a') fail('the cookie did not sign the page in');
  const session = cookies.find((c) => c.name === 'a_session_default');
  if (!session || !session.httpOnly) fail('no HttpOnly session cookie: ' + JSON.stringify(cookies));
} finally {
  await browser.close();
  pages.close();
}
if (!process.exitCode) console.log('the browser flow passed; screenshot in ' + join(out, 'browser.png'));
