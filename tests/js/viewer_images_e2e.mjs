#!/usr/bin/env node
// The image viewer of dxhub's web app (cornerstone3D on dxhub's DICOMweb) in headless
// Chromium: a reader logs in, opens a CT stack on the reading page; the viewport draws
// non-uniform pixels, the wheel moves to another slice (other pixels), a window/level
// drag and a preset change the pixel statistics, and a length measurement across the
// image reads a plausible length in mm. Prints one JSON line; exits 1 on failure.
//
// Environment: VIEWER_URL, VIEWER_LOGIN, VIEWER_PASSWORD, VIEWER_TOTP_SECRET,
// VIEWER_READ_PATH (e.g. /read/1.2.3?item=4) (required), VIEWER_ARTIFACTS,
// DXHUB_TEST_CHROMIUM, DXHUB_TEST_NODE_MODULES.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { decodePng, pixelStats } from './png.mjs';
import { artifacts, base, launch, login as logIn } from './viewer_common.mjs';

const { VIEWER_LOGIN: login, VIEWER_PASSWORD: password, VIEWER_TOTP_SECRET: secret, VIEWER_READ_PATH: readPath } = process.env;

async function main() {
  if (!base || !login || !password || !secret || !readPath) throw new Error('VIEWER_* variables missing');
  fs.mkdirSync(artifacts, { recursive: true });
  const browser = await launch({ webgl: true });
  const result = { ok: false, console: [] };
  try {
    const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
    page.setDefaultTimeout(60000);
    page.on('console', (m) => { if (m.type() === 'error') result.console.push(m.text().slice(0, 300)); });
    page.on('pageerror', (e) => result.console.push(`pageerror: ${String(e).slice(0, 300)}`));
    page.on('response', (r) => { if (r.status() >= 400) result.console.push(`${r.status()} ${r.request().method()} ${r.url().slice(0, 200)}`); });
    const shot = async (name) => page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
    await logIn(page, login, password, { secret });
    await page.getByRole('heading', { name: '工作列表' }).waitFor();
    await page.goto(`${base}${readPath}`);
    const vp = page.locator('.dx-viewport');
    await page.locator('.overlay[data-slice="1"]').waitFor();
    const stats = async () => {
      const img = decodePng(await vp.screenshot());
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
    result.ok = true;
  } catch (e) {
    const page = browser.contexts()[0]?.pages()[0];
    if (page) await page.screenshot({ path: path.join(artifacts, 'images-failure.png'), fullPage: true }).catch(() => {});
    process.stderr.write(`console errors: ${JSON.stringify(result.console)}\n`);
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
