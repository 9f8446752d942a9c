#!/usr/bin/env node
// The image viewer of dxhub's web app (cornerstone3D on dxhub's DICOMweb) in headless
// Chromium: a reader logs in, opens a CT stack on the reading page; the viewport draws
// non-uniform pixels, the wheel moves to another slice (other pixels), a window/level
// drag and a preset change the pixel statistics, and a length measurement across the
// image reads a plausible length in mm. Then, at 1366×768: the series thumbnails are
// rendered images; the overlay shows patient, study, series, position, W/L and zoom; the
// US multi-frame series plays as cine (C key, its frame rate) and pauses; the priors panel
// opens the prior beside the current study with its report; the template picker switches
// the draft, which is submitted; the senior reader returns it with a reason, the reader
// sees the reason in the history and submits again, the senior signs and adds a signed
// addendum. Prints one JSON line; exits 1 on failure.
//
// Environment: VIEWER_URL, VIEWER_LOGIN, VIEWER_PASSWORD, VIEWER_TOTP_SECRET,
// VIEWER_READ_PATH (e.g. /read/1.2.3?item=4), VIEWER_PRIOR_UID, VIEWER_SENIOR_LOGIN,
// VIEWER_SENIOR_TOTP_SECRET (required), VIEWER_ARTIFACTS, DXHUB_TEST_CHROMIUM,
// DXHUB_TEST_NODE_MODULES.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { decodePng, pixelStats } from './png.mjs';
import { artifacts, base, launch, login as logIn, totp } from './viewer_common.mjs';

const { VIEWER_LOGIN: login, VIEWER_PASSWORD: password, VIEWER_TOTP_SECRET: secret, VIEWER_READ_PATH: readPath } = process.env;
const { VIEWER_PRIOR_UID: priorUid, VIEWER_SENIOR_LOGIN: senior, VIEWER_SENIOR_TOTP_SECRET: seniorSecret } = process.env;
const flat = (s) => s.replace(/\s+/g, ' ').trim();

async function main() {
  if (!base || !login || !password || !secret || !readPath || !priorUid || !senior || !seniorSecret) throw new Error('VIEWER_* variables missing');
  fs.mkdirSync(artifacts, { recursive: true });
  const browser = await launch({ webgl: true });
  const result = { ok: false, console: [] };
  try {
    const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
    page.setDefaultTimeout(60000);
    page.on('console', (m) => { if (m.type() === 'error') result.console.push(m.text().slice(0, 300)); });
    page.on('pageerror', (e) => result.console.push(`pageerror: ${String(e).slice(0, 300)}`));
    page.on('response', (r) => { if (r.status() >= 400) result.console.push(`${r.status()} ${r.request().method()} ${r.url().slice(0, 200)}`); });
    const shot = async (name) => page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
    await logIn(page, login, password, { secret });
    await page.getByRole('heading', { name: '工作列表' }).waitFor();
    await page.goto(`${base}${readPath}`);
    const vp = page.locator('.pane.current .dx-viewport');
    await page.locator('.overlay[data-slice="1"]').waitFor();
    const frameRequests = new Set();
    page.on('request', (r) => {
      const m = r.url().match(/\/instances\/([^/]+)\/frames\/(\d+)/);
      if (m) frameRequests.add(`${m[1]}/${m[2]}`);
    });
    const stats = async (el = vp) => {
      const img = decodePng(await el.screenshot());
      return { ...pixelStats(img), sha1: crypto.createHash('sha1').update(img.px).digest('hex') };
    };
    // the first image: wait until drawn
    let s = { distinct: 0 };
    for (let i = 0; i < 60 && s.distinct < 16; i++) {
      await page.waitForTimeout(250);
      s = await stats();
    }
    result.first = s;
    await shot('i1-ct');
    const box = await vp.boundingBox();
    const cx = box.x + box.width / 2, cy = box.y + box.height / 2;
    // the wheel: the next slice, other pixels
    await page.mouse.move(cx, cy);
    await page.mouse.wheel(0, 120);
    await page.locator('.overlay[data-slice="2"]').waitFor();
    await page.waitForTimeout(500);
    result.second = await stats();
    result.slices = await page.locator('.overlay').getAttribute('data-slices');
    // window/level: drag with the primary button
    await page.mouse.move(cx, cy);
    await page.mouse.down();
    await page.mouse.move(cx + 120, cy + 80, { steps: 8 });
    await page.mouse.up();
    await page.waitForTimeout(500);
    result.after_wl = await stats();
    result.voi_text = await page.locator('.overlay').innerText();
    await page.locator('button[data-preset=bone]').click();
    await page.waitForTimeout(500);
    result.after_bone = await stats();
    await shot('i2-wl');
    // a length measurement, vertically across half the viewport's height
    await page.locator('button[data-tool=Length]').click();
    const dy = box.height / 2;
    await page.mouse.move(cx, cy - dy / 2);
    await page.mouse.down();
    await page.mouse.move(cx, cy + dy / 2, { steps: 10 });
    await page.mouse.up();
    await page.waitForTimeout(500);
    const texts = await page.locator('.dx-viewport svg text').allTextContents();
    result.length_text = texts.find((x) => /mm/.test(x)) || '';
    result.drag_px = dy;
    result.viewport_px = { width: box.width, height: box.height };
    await shot('i3-length');

    // thumbnails: every series button shows dxhub's rendered thumbnail and its count
    result.thumbs = [];
    const thumbs = page.locator('.pane.current .thumb');
    for (let i = 0; i < (await thumbs.count()); i++) {
      const img = thumbs.nth(i).locator('img');
      await page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await img.elementHandle());
      const st = await stats(img);
      result.thumbs.push({
        natural_width: await img.evaluate((el) => el.naturalWidth),
        distinct: st.distinct,
        text: flat(await thumbs.nth(i).innerText()),
      });
    }
    // the overlay's four corners (slice 2 of 5 after the wheel)
    const ov = async (k) => flat(await page.locator(`.pane.current .overlay [data-ov=${k}]`).innerText());
    result.overlay = { patient: await ov('patient'), study: await ov('study'), position: await ov('position'), view: await ov('view') };

    // cine on the CT stack: C plays, C pauses
    await page.keyboard.press('c');
    await page.locator('.pane.current .overlay[data-playing="1"]').waitFor();
    await page.waitForTimeout(400);
    await page.keyboard.press('c');
    await page.locator('.pane.current .overlay[data-playing="0"]').waitFor();
    result.cine = { stack_played: true };
    // the US cine loop: frame by frame, at its Frame Time's rate
    await thumbs.nth(1).click();
    await page.locator('.pane.current .overlay[data-slices="12"][data-slice="1"]').waitFor();
    result.cine.slices = await page.locator('.pane.current .overlay').getAttribute('data-slices');
    result.cine.fps = await page.locator('.pane.current input[name=fps]').inputValue();
    await page.keyboard.press('c');
    await page.locator('.pane.current .overlay[data-playing="1"]').waitFor();
    const seen = new Set();
    for (let i = 0; i < 20; i++) {
      seen.add(await page.locator('.pane.current .overlay').getAttribute('data-slice'));
      await page.waitForTimeout(100);
    }
    result.cine.frames_seen = seen.size;
    await shot('i4-cine');
    await page.locator('.pane.current button[data-action=cine]').click();
    await page.locator('.pane.current .overlay[data-playing="0"]').waitFor();
    const at = await page.locator('.pane.current .overlay').getAttribute('data-slice');
    await page.waitForTimeout(600);
    result.cine.paused_still = at === (await page.locator('.pane.current .overlay').getAttribute('data-slice'));
    const usFrames = [...frameRequests].map((k) => k.split('/'));
    const byInstance = {};
    for (const [sop, f] of usFrames) (byInstance[sop] ??= new Set()).add(f);
    result.cine.frames_requested = Math.max(...Object.values(byInstance).map((x) => x.size));
    await thumbs.nth(0).click();
    await page.locator('.pane.current .overlay[data-slices="5"]').waitFor();

    // priors: the prior CT on the panel; opened beside the current study with its report
    const row = page.locator(`.priors li[data-prior="${priorUid}"]`);
    await row.waitFor();
    result.priors = { row: flat(await row.innerText()) };
    await row.locator('button.compare').click();
    const pane = page.locator(`.prior-pane[data-prior="${priorUid}"]`);
    await pane.locator('.overlay[data-slice="1"]').waitFor();
    await pane.locator('.prior-report .prior-section').first().waitFor();
    let ps = { distinct: 0 };
    for (let i = 0; i < 60 && ps.distinct < 16; i++) {
      await page.waitForTimeout(250);
      ps = await stats(pane.locator('.dx-viewport'));
    }
    result.priors.image = ps;
    result.priors.report = flat(await pane.locator('.prior-report').innerText());
    result.priors.current_still_drawn = (await stats()).distinct >= 16;
    await page.screenshot({ path: path.join(artifacts, 'i5-priors.png') });
    await pane.locator('button.close-prior').click();
    await pane.waitFor({ state: 'detached' });

    // the template picker: switch the draft to the other CT template, fill, submit
    const report = page.locator('aside.report');
    const picker = report.locator('select[name=template]');
    await picker.waitFor();
    const options = await picker.locator('option').evaluateAll((os) => os.map((o) => o.value));
    const before = await picker.inputValue();
    const other = options.find((o) => o !== before);
    await picker.selectOption(other);
    await page.locator(`aside.report[data-template="${other}"]`).waitFor();
    result.templates = { options, before, after: other };
    await report.locator('button.normal-fill').click();
    await page.selectOption('select[name=qc]', 'jia');
    await page.fill('textarea[name=section-impression]', '胸部CT平扫未见明显异常。');
    await report.locator('button.submit').click();
    await page.locator('aside.report[data-state=submitted]').waitFor();

    // the senior reader returns it with a reason
    const relogin = async (who, sec) => {
      await page.getByRole('button', { name: '退出' }).click();
      await page.locator('input[name=login]').waitFor();
      await logIn(page, who, password, { secret: sec });
      await page.getByRole('heading', { name: '工作列表' }).waitFor();
      await page.goto(`${base}${readPath}`);
      await report.locator('.history').waitFor();
    };
    await relogin(senior, seniorSecret);
    await page.locator('aside.report[data-state=submitted]').waitFor();
    await report.locator('button.return').click();
    await page.fill('textarea[name=return-reason]', '请补充纵隔窗所见');
    await report.locator('form.return-form button[type=submit]').click();
    await page.locator('aside.report[data-state=returned]').waitFor();
    result.returned_history = flat(await report.locator('.history .returned').first().innerText());
    result.returned_by = await report.locator('.history .returned').first().getAttribute('data-returned-by');
    await page.screenshot({ path: path.join(artifacts, 'i6-returned.png') });
    // the reader sees why, rewrites and submits again
    await relogin(login, secret);
    await page.locator('aside.report[data-state=returned]').waitFor();
    result.reader_sees_reason = flat(await report.locator('.history').innerText());
    await page.fill('textarea[name=section-findings]', '胸廓对称，纵隔窗：纵隔居中，未见肿大淋巴结。');
    await report.locator('button.submit').click();
    await page.locator('aside.report[data-state=submitted]').waitFor();
    // the senior signs and adds a signed addendum
    await relogin(senior, seniorSecret);
    await page.locator('aside.report[data-state=submitted]').waitFor();
    await report.locator('button.sign').click();
    await page.fill('input[name=sign-password]', password);
    await page.fill('input[name=sign-totp]', totp(seniorSecret));
    await report.locator('form.reauth button[type=submit]').click();
    await page.locator('aside.report[data-state=signed]').waitFor();
    await report.locator('button.add-addendum').click();
    await page.fill('textarea[name=addendum-text]', '补充：纵隔淋巴结未见肿大。');
    await page.fill('input[name=addendum-password]', password);
    await page.fill('input[name=addendum-totp]', totp(seniorSecret));
    await report.locator('form.addendum-form button[type=submit]').click();
    await report.locator('.addenda li').first().waitFor();
    result.addenda = flat(await report.locator('.addenda').innerText());
    await shot('i7-addendum');
    result.ok = true;
  } catch (e) {
    const page = browser.contexts()[0]?.pages()[0];
    if (page) await page.screenshot({ path: path.join(artifacts, 'images-failure.png'), fullPage: true }).catch(() => {});
    process.stderr.write(`console errors: ${JSON.stringify(result.console)}\n`);
    process.stderr.write(`so far: ${JSON.stringify({ ...result, console: undefined }).slice(0, 3000)}\n`);
    throw e;
  } finally {
    await browser.close();
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((e) => {
  process.stderr.write(`[viewer-images-e2e] FAILED: ${e.stack || e}\n`);
  process.exit(1);
});
