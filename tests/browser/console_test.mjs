// The ops console in a real browser (issue 14): Debian's Chromium driven by puppeteer-core,
// against the daemon `switchyard demo --serve` left running after its two pushes.
//   node console_test.mjs <base url> <demo dir> <screenshot dir>
// Checks: the fleet page shows the generations the pushes made, then a change made by hand
// on a test host; a run page updates live
// (no reload) when the run's state changes in the database; a hostile host name renders as
// text; roll back from the host page (refused without a login or the CSRF token; with them the
// browser lands on the new run, which deploys the earlier system); Cancel of a queued and of a
// running run (the CSRF token, the stop request kept with the run, the end seen live);
// landmarks, names and focus;
// at 390 px wide the fleet, run, host and runs pages have no horizontal overflow.
// Screenshots of each page go to <screenshot dir>. Exits 1 on the first failed check.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readlinkSync, symlinkSync, unlinkSync } from 'node:fs';
import puppeteer from 'puppeteer-core';

const [base, demoDir, shots] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });
const db = `${demoDir}/state/switchyard.db`;
let passed = 0;
let failed = 0;
function check(what, ok, detail = '') {
  if (ok) { passed++; console.log(`ok: ${what}`); } else { failed++; console.log(`FAILED: ${what} ${detail}`); }
}
const sql = (q) => execFileSync('sqlite3', ['-cmd', '.timeout 5000', db, q], { encoding: 'utf8' }).trim();

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });

  // 1. The fleet after the demo's two pushes: every machine deployed once, the two that
  //    import web.nix twice (generation 2).
  await page.goto(`${base}/fleet`, { waitUntil: 'load' });
  const rows = await page.$$eval('tr[data-host]', (trs) => trs.map((tr) => ({
    host: tr.dataset.host, drift: tr.dataset.drift, gen: tr.querySelector('.gen').textContent.trim() })));
  const gen = Object.fromEntries(rows.map((r) => [r.host, r.gen]));
  check('fleet lists the five demo hosts', rows.length === 5, JSON.stringify(rows));
  check('vps-het-1 and wellsjaha at generation 2', gen['vps-het-1'] === '2' && gen.wellsjaha === '2', JSON.stringify(gen));
  check('the other three at generation 1', rows.filter((r) => r.gen === '1').length === 3, JSON.stringify(gen));
  check('no host drifted', rows.every((r) => r.drift === 'in-sync' || r.drift === 'not-probed'), JSON.stringify(rows));
  await page.screenshot({ path: `${shots}/fleet.png`, fullPage: true });

  // 1b. A change by hand on a host (someone activated a system no deploy put there): the
  //     probe sees it within a round and the fleet page says so.
  const link = `${demoDir}/hosts/hosts/octavia/state/current-system`;
  unlinkSync(link);
  symlinkSync('/nix/store/00000000000000000000000000000000-nixos-system-by-hand', link);
  let drift = '';
  for (let i = 0; i < 30 && drift !== 'changed-by-hand'; i++) {
    await new Promise((r) => setTimeout(r, 500));
    await page.goto(`${base}/fleet`, { waitUntil: 'load' });
    drift = await page.$eval('tr[id="octavia"]', (tr) => tr.dataset.drift);
  }
  check('a drift made by hand on octavia appears', drift === 'changed-by-hand', drift);
  const firstRow = await page.$eval('tr[data-host]', (tr) => tr.dataset.host);
  check('the drifted host is listed first', firstRow === 'octavia', firstRow);
  await page.screenshot({ path: `${shots}/fleet-drift.png`, fullPage: true });

  // 2. A run page updates live. The run is written into the daemon's database directly
  //    (the state a deploy in progress leaves there), so the test controls when it changes.
  const now = Date.now();
  const hostile = `<b>&"'x`;
  const id = sql(`INSERT INTO runs(repo, kind, trigger, sha, ref, state, created_at, started_at)
      VALUES ('lab/infra', 'deploy', 'manual', '${'f'.repeat(40)}', 'refs/heads/live-test', 'running', ${now}, ${now});
    SELECT last_insert_rowid();`);
  sql(`INSERT INTO run_hosts(run, host, stage, state, summary, started_at) VALUES
      (${id}, 'web-live', 'deploy', 'running', 'copying', ${now}),
      (${id}, 'db-live', 'deploy', 'running', 'copying', ${now}),
      (${id}, '${hostile.replace(/'/g, "''")}', 'plan', 'refused', 'not a host name', ${now});`);
  await page.goto(`${base}/runs/${id}`, { waitUntil: 'load' });
  await page.evaluate(() => { window.__sameDocument = 42; });
  check('hostile host name shown as text', await page.$$eval('tr[data-host]', (trs, h) =>
    trs.some((tr) => tr.dataset.host === h && tr.cells[0].textContent === h), hostile));
  check('no element injected by the hostile name', (await page.$$('#sy\\:hosts td b')).length === 0);
  sql(`UPDATE run_hosts SET state = 'failed', summary = 'activation failed' WHERE run = ${id} AND host = 'db-live';
       UPDATE run_hosts SET state = 'succeeded', summary = 'deployed' WHERE run = ${id} AND host = 'web-live';
       UPDATE runs SET state = 'failed', finished_at = ${Date.now()} WHERE id = ${id};`);
  let live = true;
  try {
    await page.waitForFunction(() => document.getElementById('sy:state').textContent === 'failed', { timeout: 15000 });
  } catch (e) { live = false; }
  check('the run state changed on the page without a reload', live &&
    (await page.evaluate(() => window.__sameDocument)) === 42);
  const order = await page.$$eval('tr[data-host]', (trs) => trs.map((tr) => [tr.dataset.host, tr.cells[2].textContent]));
  check('failures first', order[0][1] === 'refused' || order[0][1] === 'failed', JSON.stringify(order));
  check('db-live shows failed', order.some(([h, s]) => h === 'db-live' && s === 'failed'), JSON.stringify(order));
  const counts = await page.$eval('#sy\\:counts', (el) => el.textContent);
  check('counts per state', counts.includes('1 failed') && counts.includes('1 succeeded'), counts);
  check('#host anchor', await page.evaluate(() => !!document.getElementById('db-live')));
  await page.screenshot({ path: `${shots}/run-live.png`, fullPage: true });

  // 3. Roll back from the host page: refused without a login or without the CSRF token;
  //    with both it asks first, then starts a run that deploys the first push's system to
  //    wellsjaha again, and the browser lands on that run, which goes live to its end.
  const runsBefore = sql('SELECT COUNT(*) FROM runs');
  const anon = await page.evaluate(async (u) => {
    const r = await fetch(u, { method: 'POST', body: new URLSearchParams({ repo: 'lab/infra', confirm: 'yes' }) });
    return [r.status, r.url];
  }, `${base}/hosts/wellsjaha/rollback`);
  check('roll back without a login goes to the login page', anon[1].includes('/login?next=/hosts/wellsjaha'), JSON.stringify(anon));
  const token = readFileSync(`${demoDir}/ui.token`, 'utf8').trim();
  await page.goto(`${base}/login?next=/hosts/wellsjaha`, { waitUntil: 'load' });
  await page.type('input[name=token]', token);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  check('logged in, back on the host page', page.url().endsWith('/hosts/wellsjaha'), page.url());
  const noCsrf = await page.evaluate(async (u) => {
    const r = await fetch(u, { method: 'POST', body: new URLSearchParams({ repo: 'lab/infra', confirm: 'yes' }) });
    return r.status;
  }, `${base}/hosts/wellsjaha/rollback`);
  check('roll back without the CSRF token is refused', noCsrf === 403, String(noCsrf));
  check('nothing was started by the refused requests', sql('SELECT COUNT(*) FROM runs') === runsBefore);
  await page.screenshot({ path: `${shots}/host-logged-in.png`, fullPage: true });
  await Promise.all([page.waitForNavigation(), page.click('form[action$="/rollback"] button')]);
  check('roll back asks to confirm', (await page.content()).includes('Roll back wellsjaha now'));
  await page.screenshot({ path: `${shots}/rollback-confirm.png`, fullPage: true });
  await Promise.all([page.waitForNavigation(), page.click('form[action$="/rollback"] button')]);
  const rollbackRun = page.url().match(/\/runs\/(\d+)$/);
  check('the browser lands on the new run', !!rollbackRun && Number(rollbackRun[1]) > Number(runsBefore), page.url());
  let ended = true;
  try {
    await page.waitForFunction(() => ['succeeded', 'failed'].includes(document.getElementById('sy:state').textContent), { timeout: 120000 });
  } catch (e) { ended = false; }
  const rbState = await page.$eval('#sy\\:state', (el) => el.textContent);
  check('the roll back run succeeded (seen live)', ended && rbState === 'succeeded', rbState);
  check('the run says it is a roll back and who asked', (await page.content()).includes('Roll back of wellsjaha') &&
    (await page.content()).includes('web login from'));
  await page.screenshot({ path: `${shots}/rollback-run.png`, fullPage: true });
  const firstPath = sql(`SELECT out_path FROM run_hosts WHERE host = 'wellsjaha' AND run = (SELECT MIN(id) FROM runs WHERE ref = 'refs/heads/main')`);
  const nowPath = readlinkSync(`${demoDir}/hosts/hosts/wellsjaha/state/current-system`);
  check('wellsjaha runs the first push\'s system again', nowPath === firstPath, `${nowPath} vs ${firstPath}`);
  await page.goto(`${base}/fleet`, { waitUntil: 'load' });
  const wgen = await page.$eval('tr[id="wellsjaha"] .gen', (el) => el.textContent.trim());
  check('the fleet shows wellsjaha at generation 3', wgen === '3', wgen);

  // 3b. Cancel (logged in since 3): refused without the CSRF token; a queued run ends at
  //     once; a running one is asked to stop and the request is kept with the run (so a
  //     restart does not resume it), and the page follows it live to its end. The two runs
  //     are written into the database like the one in 2: r1 "runs" on its ref (no worker
  //     has it), so r2, queued behind it on the same ref, is never claimed.
  const t = Date.now();
  const r1 = sql(`INSERT INTO runs(repo, kind, trigger, sha, ref, state, created_at, started_at)
      VALUES ('lab/infra', 'deploy', 'manual', '${'e'.repeat(40)}', 'refs/heads/cancel-test', 'running', ${t}, ${t});
    SELECT last_insert_rowid();`);
  sql(`INSERT INTO run_hosts(run, host, stage, state, summary, started_at) VALUES
      (${r1}, 'web-cancel', 'deploy', 'running', 'deploy: activate', ${t}),
      (${r1}, 'db-cancel', 'deploy', 'pending', 'waiting to deploy', NULL);`);
  const r2 = sql(`INSERT INTO runs(repo, kind, trigger, sha, ref, state, created_at)
      VALUES ('lab/infra', 'deploy', 'manual', '${'d'.repeat(40)}', 'refs/heads/cancel-test', 'queued', ${t});
    SELECT last_insert_rowid();`);
  const noCsrfCancel = await page.evaluate(async (u) => (await fetch(u, { method: 'POST' })).status,
    `${base}/runs/${r2}/cancel`);
  check('cancel without the CSRF token is refused', noCsrfCancel === 403, String(noCsrfCancel));
  check('the refused cancel changed nothing', sql(`SELECT state FROM runs WHERE id = ${r2}`) === 'queued');
  await page.goto(`${base}/runs/${r2}`, { waitUntil: 'load' });
  check('a queued run has a Cancel button', (await page.$('#sy\\:cancel button')) !== null);
  await Promise.all([page.waitForNavigation(), page.click('#sy\\:cancel button')]);
  check('cancel goes back to the run page', page.url().endsWith(`/runs/${r2}`), page.url());
  const r2State = await page.$eval('#sy\\:state', (el) => el.textContent);
  check('the queued run is cancelled at once', r2State === 'cancelled' &&
    sql(`SELECT state FROM runs WHERE id = ${r2}`) === 'cancelled', r2State);
  check('the page says who cancelled it', (await page.content()).includes('cancelled by web login from'));
  check('an ended run has no Cancel button', (await page.$('#sy\\:cancel')) === null);
  await page.screenshot({ path: `${shots}/cancel-queued.png`, fullPage: true });
  await page.goto(`${base}/runs/${r1}`, { waitUntil: 'load' });
  await Promise.all([page.waitForNavigation(), page.click('#sy\\:cancel button')]);
  check('a running run keeps running after Cancel (its deploy finishes)',
    (await page.$eval('#sy\\:state', (el) => el.textContent)) === 'running');
  const kept = sql(`SELECT cancel_requested FROM runs WHERE id = ${r1}`);
  check('the stop request is kept with the run (a restart does not resume it)',
    kept.startsWith('cancelled by web login from'), kept);
  await page.evaluate(() => { window.__sameDocument = 7; });
  sql(`UPDATE run_hosts SET state = 'succeeded', summary = 'deployed', finished_at = ${Date.now()} WHERE run = ${r1} AND host = 'web-cancel';
       UPDATE run_hosts SET state = 'skipped', summary = 'not started: the run was ${kept.replace(/'/g, "''")}' WHERE run = ${r1} AND host = 'db-cancel';
       UPDATE runs SET state = 'cancelled', error = '${kept.replace(/'/g, "''")}', finished_at = ${Date.now()} WHERE id = ${r1};`);
  let cancelledLive = true;
  try {
    await page.waitForFunction(() => document.getElementById('sy:state').textContent === 'cancelled', { timeout: 15000 });
  } catch (e) { cancelledLive = false; }
  check('the running run ends cancelled on the page without a reload', cancelledLive &&
    (await page.evaluate(() => window.__sameDocument)) === 7);
  const cancelRows = await page.$$eval('tr[data-host]', (trs) => trs.map((tr) => [tr.dataset.host, tr.cells[2].textContent]));
  check('the host under way finished, the one not started was skipped', JSON.stringify(cancelRows.sort()) ===
    JSON.stringify([['db-cancel', 'skipped'], ['web-cancel', 'succeeded']]), JSON.stringify(cancelRows));
  await page.screenshot({ path: `${shots}/cancel-running.png`, fullPage: true });

  // 4. Everyone's screen: landmarks, every button and link named, focus visible.
  const a11y = await page.evaluate(() => {
    const named = (el) => (el.getAttribute('aria-label') || el.textContent || '').trim().length > 0;
    const buttons = [...document.querySelectorAll('button, a')];
    return {
      landmarks: !!document.querySelector('header') && !!document.querySelector('nav') && !!document.querySelector('main'),
      unnamed: buttons.filter((b) => !named(b)).map((b) => b.outerHTML),
    };
  });
  check('landmarks: header, nav, main', a11y.landmarks);
  check('every button and link has a name', a11y.unnamed.length === 0, JSON.stringify(a11y.unnamed));
  await page.keyboard.press('Tab');
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  check('keyboard focus is visible', outline !== 'none', outline);

  // 4b. The log page: the deploy's sections, each line with the time it was written.
  await page.goto(`${base}/runs/${rollbackRun ? rollbackRun[1] : 0}/hosts/wellsjaha/log`, { waitUntil: 'load' });
  const log = await page.evaluate(() => ({
    sections: [...document.querySelectorAll('details summary')].map((s) => s.textContent),
    stamped: [...document.querySelectorAll('pre.log .ts')].filter((t) => /^\d\d:\d\d:\d\d$/.test(t.textContent)).length +
      [...document.querySelectorAll('details summary')].filter((s) => /\(\d\d:\d\d:\d\d, /.test(s.textContent)).length,
  }));
  check('the log page has a section per deploy step', log.sections.some((t) => t.startsWith('deploy: activate')), JSON.stringify(log.sections));
  check('log lines and sections carry their time', log.stamped >= 10, String(log.stamped));
  await page.screenshot({ path: `${shots}/log.png`, fullPage: true });

  // 5. A phone, 390 px wide: no horizontal scrolling on the main pages.
  const demoRun = sql(`SELECT MAX(id) FROM runs WHERE ref = 'refs/heads/main'`);
  await page.setViewport({ width: 390, height: 844, isMobile: true, hasTouch: true });
  const pages = [['fleet', '/fleet'], ['run', `/runs/${demoRun}`], ['host', '/hosts/wellsjaha'], ['runs', '/'],
    ['log', `/runs/${demoRun}/hosts/wellsjaha/log`]];
  for (const [name, path] of pages) {
    await page.goto(`${base}${path}`, { waitUntil: 'load' });
    const w = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
    check(`${name} page fits 390 px`, w[0] <= w[1], `scrollWidth ${w[0]} > clientWidth ${w[1]}`);
    await page.screenshot({ path: `${shots}/${name}-phone.png`, fullPage: true });
  }
} finally {
  await browser.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
