#!/usr/bin/env node
// One viewer timing run in headless Chromium (playwright-core + Debian's chromium):
// open a study's reading page and time
//   first_image_ms  navigation start → the first CORNERSTONE_IMAGE_RENDERED event (both
//                   dxhub's app and OHIF draw with cornerstone3D, which fires it on the
//                   viewport element after each render; a capturing listener on the
//                   document sees it), checked afterwards to be a non-uniform picture;
//   scroll_ips      images per second while scrolling through the whole stack once every
//                   image is loaded: each step is a wheel event on the viewport, and the
//                   next step starts when that image has rendered (a warm-up pass first
//                   loads every slice).
// Prints one JSON line; exits 1 with a message on stderr when something fails.
//
// Environment: VB_TARGET (dxhub | ohif), VB_URL (the page to open), VB_COOKIE_URL and
// VB_TOKEN (dxhub: the session token is set as the dxhub_session cookie), VB_SLICES (the
// stack's length), VB_ARTIFACTS (screenshots), DXHUB_TEST_CHROMIUM, DXHUB_TEST_NODE_MODULES.

import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const env = process.env;
const modulesDir = env.DXHUB_TEST_NODE_MODULES || path.join(here, '../../tests/js/node_modules');
const require = createRequire(path.join(modulesDir, 'noop.js'));
const { chromium } = require('playwright-core');

const target = env.VB_TARGET;
const slices = Number(env.VB_SLICES || 300);
const artifacts = env.VB_ARTIFACTS || path.join(here, '../out/viewer-artifacts');

async function main() {
  if (!target || !env.VB_URL) throw new Error('VB_TARGET and VB_URL are required');
  fs.mkdirSync(artifacts, { recursive: true });
  const browser = await chromium.launch({
    executablePath: env.DXHUB_TEST_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--no-first-run', '--enable-unsafe-swiftshader', '--use-angle=swiftshader'],
  });
  const out = { target };
  try {
    const context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
    if (env.VB_TOKEN && env.VB_COOKIE_URL) {
      await context.addCookies([{ name: 'dxhub_session', value: env.VB_TOKEN, url: env.VB_COOKIE_URL }]);
    }
    // every render, with its time since navigation start
    await context.addInitScript(() => {
      window.__renders = [];
      document.addEventListener('CORNERSTONE_IMAGE_RENDERED', () => window.__renders.push(performance.now()), true);
    });
    const page = await context.newPage();
    page.setDefaultTimeout(120000);
    // OHIF's first-visit tour and banner take the first clicks; dismiss them if shown
    await page.goto(env.VB_URL, { waitUntil: 'commit' });
    await page.waitForFunction(() => window.__renders.length > 0, null, { timeout: 60000 }).catch(async (e) => {
      await page.screenshot({ path: path.join(artifacts, `${target}-FAILED.png`) });
      throw e;
    });
    out.first_image_ms = Math.round(await page.evaluate(() => window.__renders[0]));
    const nav = await page.evaluate(() => {
      const n = performance.getEntriesByType('navigation')[0];
      return { dom_content_loaded_ms: Math.round(n.domContentLoadedEventEnd), load_ms: Math.round(n.loadEventEnd) };
    });
    Object.assign(out, nav);
    if (env.VB_TRACE === '1') {
      // what the page fetched before the first image, and when (ms since navigation start)
      out.trace = await page.evaluate((first) =>
        performance
          .getEntriesByType('resource')
          .filter((e) => e.startTime < first)
          .map((e) => [e.name.replace(location.origin, '').replace(/\/dicomweb\/studies\/[^/]+/, '/…').slice(0, 70), Math.round(e.startTime), Math.round(e.responseEnd)]),
        out.first_image_ms,
      );
    }
    // the first picture is a real image: many distinct values on the canvas
    const canvas = page.locator('canvas.cornerstone-canvas').first();
    out.first_canvas_distinct = await canvas.evaluate((c) => {
      const g = document.createElement('canvas');
      g.width = 128;
      g.height = 128;
      const x = g.getContext('2d');
      x.drawImage(c, 0, 0, 128, 128);
      const d = x.getImageData(0, 0, 128, 128).data;
      const seen = new Set();
      for (let i = 0; i < d.length; i += 4) seen.add(d[i]);
      return seen.size;
    });
    await page.screenshot({ path: path.join(artifacts, `${target}-first.png`) });
    for (const name of ['Skip all', 'Confirm and hide']) {
      const b = page.getByRole('button', { name, exact: true });
      if (await b.first().isVisible().catch(() => false)) await b.first().click({ timeout: 2000 }).catch(() => {});
    }

    // scroll one way through the stack, each step waiting for its render; returns
    // [steps, ms]
    const sweep = (steps, dir) =>
      page.evaluate(
        async ({ steps, dir }) => {
          const canvas = document.querySelector('canvas.cornerstone-canvas');
          const r = canvas.getBoundingClientRect();
          const at = { clientX: r.left + r.width / 2, clientY: r.top + r.height / 2 };
          // resolves on the next render (true), or after 5 s without one (false)
          const rendered = () =>
            new Promise((resolve) => {
              const done = (ok) => {
                clearTimeout(timer);
                document.removeEventListener('CORNERSTONE_IMAGE_RENDERED', on, true);
                resolve(ok);
              };
              const on = () => done(true);
              const timer = setTimeout(() => done(false), 5000);
              document.addEventListener('CORNERSTONE_IMAGE_RENDERED', on, true);
            });
          let done = 0;
          const t0 = performance.now();
          for (let i = 0; i < steps; i++) {
            const wait = rendered();
            canvas.dispatchEvent(new WheelEvent('wheel', { deltaY: dir * 100, deltaMode: 0, bubbles: true, cancelable: true, ...at }));
            if (!(await wait)) break;
            done++;
          }
          return [done, performance.now() - t0];
        },
        { steps, dir },
      );
    // warm-up: every slice once (loads what prefetching has not yet), then back to the top
    // (which wheel direction moves away from the first slice differs between viewers:
    // try one, and the other if nothing moved)
    let dir = -1;
    let [warm, warmMs] = await sweep(slices - 1, dir);
    if (warm === 0) {
      dir = 1;
      [warm, warmMs] = await sweep(slices - 1, dir);
    }
    out.warmup_steps = warm;
    out.warmup_ms = Math.round(warmMs);
    await page.waitForTimeout(500);
    const [steps, ms] = await sweep(slices - 1, -dir);
    out.scroll_steps = steps;
    out.scroll_ms = Math.round(ms);
    out.scroll_ips = Math.round((steps / ms) * 1000 * 10) / 10;
    await page.screenshot({ path: path.join(artifacts, `${target}-scrolled.png`) });
    if (steps < slices - 1) throw new Error(`only ${steps} of ${slices - 1} scroll steps rendered: ${JSON.stringify(out)}`);
  } finally {
    await browser.close();
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((e) => {
  process.stderr.write(`[bench-viewer] FAILED: ${e.stack || e}\n`);
  process.exit(1);
});
