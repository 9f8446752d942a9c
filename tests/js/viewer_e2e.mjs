#!/usr/bin/env node
// dxhub's own web app (viewer/) in headless Chromium (playwright-core driving the system's
// Chromium): a reader logs in with password and one-time code, sees the queued item in
// the worklist, takes it with the "N" shortcut, sees it as theirs, and switches the
// language to English. Screenshots of each step go to the artifacts directory. Prints one
// JSON line; exits 1 with a message on stderr on failure.
//
// Environment:
//   VIEWER_URL       the hub's HTTP base (required), e.g. http://127.0.0.1:40123
//   VIEWER_LOGIN, VIEWER_PASSWORD, VIEWER_TOTP_SECRET (base32)   the reader (required)
//   VIEWER_STUDY_UID the Study Instance UID of the queued item (required)
//   VIEWER_ENROL_LOGIN  a reader without a second factor yet: after the steps above, logs
//                    in, enrols TOTP in the app (reads the shown key) and reaches the worklist
//   VIEWER_ARTIFACTS directory for screenshots (default target/test-artifacts/viewer)
//   DXHUB_TEST_CHROMIUM  Chromium binary (default /usr/bin/chromium)
//   DXHUB_TEST_NODE_MODULES  node_modules holding playwright-core (default: next to this file)

import fs from 'node:fs';
import path from 'node:path';
import { artifacts, base, launch, login as logIn, totp } from './viewer_common.mjs';

const login = process.env.VIEWER_LOGIN || '';
const password = process.env.VIEWER_PASSWORD || '';
const secret = process.env.VIEWER_TOTP_SECRET || '';
const study = process.env.VIEWER_STUDY_UID || '';
const timeout = 30000;

function log(msg) {
  process.stderr.write(`[viewer-e2e ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

async function main() {
  if (!base || !login || !password || !secret || !study) {
    throw new Error('VIEWER_URL, VIEWER_LOGIN, VIEWER_PASSWORD, VIEWER_TOTP_SECRET and VIEWER_STUDY_UID are required');
  }
  fs.mkdirSync(artifacts, { recursive: true });
  const browser = await launch();
  const result = { ok: false };
  try {
    const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
    page.setDefaultTimeout(timeout);
    const shot = async (name) => page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });

    // 1. the login form, in Chinese; 2. a reader with a second factor is asked for the code
    await logIn(page, login, password, {
      secret,
      before: async () => {
        result.lang_default = await page.evaluate(() => document.documentElement.lang);
        await shot('1-login');
      },
    });
    // 3. the worklist: the queue tab lists the queued item, with the live stream on
    await page.getByRole('heading', { name: '工作列表' }).waitFor();
    const row = page.locator(`tr[data-study="${study}"]`);
    await row.waitFor();
    result.queued_row = (await row.innerText()).replace(/\s+/g, ' ').trim();
    await page.locator('.live.on').waitFor();
    await shot('2-queue');
    // filters: the API's modality filter hides the ECG under CT and shows it under ECG;
    // the patient search and the institution filter work in the page; headers sort
    await page.selectOption('select[name=modality]', 'CT');
    await row.waitFor({ state: 'detached' });
    await page.selectOption('select[name=modality]', 'ECG');
    await row.waitFor();
    result.filter_modality = true;
    await page.fill('input[name=search]', 'no-such-patient');
    await row.waitFor({ state: 'detached' });
    await page.fill('input[name=search]', '王');
    await row.waitFor();
    result.filter_search = true;
    await page.fill('input[name=search]', '');
    await page.locator('th[data-sort=due]').click();
    result.sort_due = await page.locator('th[data-sort=due]').getAttribute('aria-sort');
    await page.locator('th[data-sort=due]').click();
    result.sort_due_again = await page.locator('th[data-sort=due]').getAttribute('aria-sort');
    await page.selectOption('select[name=modality]', '');
    // "?" lists the shortcuts; Esc closes the list
    await page.keyboard.press('?');
    const help = page.getByRole('dialog', { name: '快捷键' });
    await help.waitFor();
    result.help = (await help.innerText()).replace(/\s+/g, ' ').trim();
    await shot('2b-shortcuts');
    await page.keyboard.press('Escape');
    await help.waitFor({ state: 'detached' });
    // 4. "N" takes the next item: it shows on the "mine" tab, being read
    await page.keyboard.press('n');
    await page.locator('button[data-tab=mine].active').waitFor();
    await page.locator(`tr[data-study="${study}"]`).getByText('阅读中').waitFor();
    result.mine_row = (await page.locator(`tr[data-study="${study}"]`).innerText()).replace(/\s+/g, ' ').trim();
    await shot('3-mine');
    // 4b. the reading page of the ECG: paper grid, 12 leads + rhythm strip, calipers on two
    // successive R peaks of the rhythm strip read the RR interval
    await page.locator(`tr[data-study="${study}"] a.open`).click();
    const rhythm = page.locator('svg g.lead[data-rhythm="1"] polyline');
    await rhythm.waitFor();
    // the reader looks for longer than the lease: the page keeps the claim
    if (process.env.VIEWER_READ_MS) await page.waitForTimeout(Number(process.env.VIEWER_READ_MS));
    result.lease_lost_banner = await page.locator('p.lease-lost').count();
    result.grid_paths = await page.locator('svg g.grid path').count();
    result.leads = await page.locator('svg g.lead').count();
    // measure at 50 mm/s (5 ms per pixel), as readers do for intervals
    const width25 = Number(await page.locator('.paper svg').getAttribute('width'));
    await page.selectOption('select[name=speed]', '50');
    result.width_ratio = Number(await page.locator('.paper svg').getAttribute('width')) / width25;
    const geo = await page.evaluate(() => {
      const svg = document.querySelector('.paper svg');
      const box = svg.getBoundingClientRect();
      const pts = document
        .querySelector('svg g.lead[data-rhythm="1"] polyline')
        .getAttribute('points')
        .trim()
        .split(/\s+/)
        .map((p) => p.split(',').map(Number));
      return {
        left: box.left, top: box.top, scale: box.width / Number(svg.getAttribute('width')),
        pxPerMm: Number(svg.dataset.pxPerMm), speed: Number(svg.dataset.speed), pts,
      };
    });
    // R peaks: the highest point (smallest y) within ±300 ms, well above the median
    const pxPerS = geo.speed * geo.pxPerMm;
    const ys = geo.pts.map((p) => p[1]).sort((a, b) => a - b);
    const median = ys[Math.floor(ys.length / 2)];
    const top = ys[0];
    const peaks = [];
    for (let i = 0; i < geo.pts.length; i++) {
      const [x, y] = geo.pts[i];
      if (median - y < 0.5 * (median - top)) continue;
      let best = true;
      for (let j = i - 1; j >= 0 && geo.pts[j][0] >= x - 0.3 * pxPerS; j--) if (geo.pts[j][1] < y) best = false;
      for (let j = i + 1; j < geo.pts.length && geo.pts[j][0] <= x + 0.3 * pxPerS; j++) if (geo.pts[j][1] <= y) best = false;
      if (best) peaks.push(x);
    }
    if (peaks.length < 3) throw new Error(`found ${peaks.length} R peaks on the rhythm strip`);
    const [x1, x2] = [peaks[1], peaks[2]];
    const yClick = geo.top + 20;
    await page.mouse.click(geo.left + x1 * geo.scale, yClick);
    await page.mouse.click(geo.left + x2 * geo.scale, yClick);
    result.caliper_ms = Number(await page.locator('.caliper').getAttribute('data-ms'));
    result.caliper_text = await page.locator('.caliper').innerText();
    result.heart_rate = await page.locator('td[data-m=heart_rate]').innerText();
    await shot('3b-ecg');
    // 12×1 draws twelve rows
    await page.selectOption('select[name=layout]', '12x1');
    result.leads_12x1 = await page.locator('svg g.lead').count();
    await shot('3c-ecg-12x1');
    // 4c. the report: confirm every machine value, QC grade, impression; submit; sign
    // with password and one-time code (the reader holds signing authority)
    const report = page.locator('aside.report');
    await report.locator('table.machine').waitFor();
    const boxes = report.locator('input[name^=confirm-]');
    result.machine_values = await boxes.count();
    for (let i = 0; i < result.machine_values; i++) await boxes.nth(i).check();
    await page.selectOption('select[name=qc]', 'acceptable');
    // a dead link: saves fail. What was typed is kept on this workstation; after a reload
    // (or a crash) the editor offers it back, and restored it is saved on the hub
    const reportPost = (r) => r.method() === 'POST' && /\/api\/v1\/worklist\/\d+\/report$/.test(r.url());
    await page.route('**/api/v1/worklist/*/report', (route) =>
      route.request().method() === 'POST' ? route.abort('internetdisconnected') : route.continue());
    const kept = '断网时写下的印象';
    await page.locator('textarea[name=section-impression]').fill(kept);
    await page.waitForFunction((text) => Object.keys(localStorage).some((k) =>
      k.startsWith('dxhub.draft.') && localStorage.getItem(k).includes(text)), kept);
    // a save was tried and failed, so the text is on no server
    await page.waitForEvent('requestfailed', (r) => reportPost(r) && /INTERNET_DISCONNECTED/.test(r.failure()?.errorText ?? ''));
    page.once('dialog', (d) => d.accept().catch(() => {}));
    await page.reload();
    const offer = page.locator('aside.report .local-draft');
    await offer.waitFor();
    // the link is back
    await page.unroute('**/api/v1/worklist/*/report');
    result.draft_offered = (await offer.innerText()).includes('本机保存有此报告尚未上传的文字');
    const saved = page.waitForResponse((r) => reportPost(r.request()) && r.ok());
    await offer.locator('button.restore-draft').click();
    result.draft_restored_text = await page.locator('textarea[name=section-impression]').inputValue();
    result.draft_restored_qc = await page.locator('select[name=qc]').inputValue();
    result.draft_saved = (await (await saved).json()).version?.version ?? null;
    await page.waitForFunction(() => !Object.keys(localStorage).some((k) => k.startsWith('dxhub.draft.')));
    result.draft_cleared = true;
    await offer.waitFor({ state: 'detached' });
    // a slow link: saves answer after 800 ms. The autosave of the first words is on its
    // way when the last ones are typed and Submit is pressed at once: what is submitted is
    // the text on screen, not the autosaved one
    await page.route('**/api/v1/worklist/*/report', async (route) => {
      await new Promise((r) => setTimeout(r, 800));
      await route.continue();
    });
    const impression = page.locator('textarea[name=section-impression]');
    await impression.fill('窦性心律，');
    await page.waitForRequest((r) => r.method() === 'POST' && /\/api\/v1\/worklist\/\d+\/report$/.test(r.url()));
    await impression.fill('窦性心律，正常心电图。');
    await report.locator('button.submit').click();
    await page.locator('aside.report[data-state=submitted]').waitFor();
    await page.unroute('**/api/v1/worklist/*/report');
    await report.locator('button.sign').click();
    await page.fill('input[name=sign-password]', password);
    await page.fill('input[name=sign-totp]', totp(secret));
    await report.locator('form.reauth button[type=submit]').click();
    await page.locator('aside.report[data-state=signed]').waitFor();
    result.report_status = await report.locator('.status').innerText();
    await shot('3d-signed');
    await page.getByRole('link', { name: /工作列表/ }).click();
    await page.getByRole('heading', { name: '工作列表' }).waitFor();
    // 5. English
    await page.getByRole('button', { name: 'English' }).click();
    await page.getByRole('heading', { name: 'Worklist' }).waitFor();
    await page.getByRole('tab', { name: 'Mine' }).waitFor();
    result.lang_switched = await page.evaluate(() => document.documentElement.lang);
    result.english_header = (await page.locator('table thead').innerText()).replace(/\s+/g, ' ').trim();
    await shot('4-english');
    // 6. a reader without a second factor enrols in the app, then reaches the worklist
    const enrol = process.env.VIEWER_ENROL_LOGIN;
    if (enrol) {
      // a draft kept on this workstation (another item's) goes with the logout
      await page.evaluate(() => localStorage.setItem('dxhub.draft.1.999', JSON.stringify({ user: 1, item: 999, at: Date.now() })));
      await page.getByRole('button', { name: 'Log out' }).click();
      await page.fill('input[name=login]', '');
      result.drafts_after_logout = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('dxhub.draft.')).length);
      await page.fill('input[name=login]', enrol);
      await page.fill('input[name=password]', password);
      await page.getByRole('button', { name: 'Log in' }).click();
      const key = page.locator('code.secret');
      await key.filter({ hasText: /[A-Z2-7]{16,}/ }).waitFor();
      await shot('5-enrol');
      await page.fill('input[name=totp]', totp((await key.innerText()).trim()));
      await page.getByRole('button', { name: 'Confirm' }).click();
      await page.getByRole('heading', { name: 'Worklist' }).waitFor();
      result.enrolled = true;
    }
    result.ok = true;
  } catch (e) {
    // what the page said, and how it looked, when a step failed
    const page = browser.contexts()[0]?.pages()[0];
    if (page) {
      const said = await page.locator('.status, .message, .error').allInnerTexts().catch(() => []);
      log(`page messages: ${JSON.stringify(said)}`);
      await page.screenshot({ path: path.join(artifacts, 'failure.png'), fullPage: true }).catch(() => {});
    }
    throw e;
  } finally {
    await browser.close();
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((e) => {
  log(`FAILED: ${e.stack || e}`);
  process.exit(1);
});
