#!/usr/bin/env node
// OHIF against a DICOMweb archive, in headless Chromium (playwright-core driving the
// system's Chromium; it never downloads a browser).
//
// Checks that the study list lists the study and that the viewer draws it: a cornerstone
// canvas whose pixels are non-uniform. Saves screenshots, the DICOMweb requests with their
// statuses and the browser console into the artifacts directory. Exits 0 on success, 1 with
// a message on stderr otherwise.
//
// Environment:
//   OHIF_URL         where serve_ohif.mjs serves OHIF (required), e.g. http://127.0.0.1:40123
//   OHIF_STUDY_UID   the Study Instance UID to find and open (required)
//   OHIF_EXPECT      text the study's row in the list must show (e.g. the accession number or the
//                    patient name as OHIF shows it, "Family, Given"; default: none)
//   OHIF_TOKEN       a bearer token: given to OHIF the standard way, `&token=` on the viewer
//                    URL (OHIF then sends `Authorization: Bearer <token>` on every DICOMweb
//                    request). OHIF 3.13 reads `token` only on the viewer route, so with a
//                    token the viewer is opened first and the study list is reached from it
//                    in-app (as a user pressing the back arrow would); without one the list
//                    is opened first.
//   OHIF_ARTIFACTS   directory for screenshots and logs (default target/test-artifacts/ohif)
//   DXHUB_TEST_CHROMIUM  Chromium binary (default /usr/bin/chromium)
//   DXHUB_TEST_NODE_MODULES  node_modules holding playwright-core (default: next to this file)
//   OHIF_TIMEOUT_MS  per step (default 90000)

import fs from 'node:fs';
import path from 'node:path';
import { decodePng, pixelStats } from './png.mjs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const modulesDir = process.env.DXHUB_TEST_NODE_MODULES || path.join(here, 'node_modules');
const require = createRequire(path.join(modulesDir, 'noop.js'));
const { chromium } = require('playwright-core');

const base = (process.env.OHIF_URL || '').replace(/\/+$/, '');
const studyUid = process.env.OHIF_STUDY_UID || '';
const expect = process.env.OHIF_EXPECT || '';
const token = process.env.OHIF_TOKEN || '';
// 1: only the study list is checked (e.g. an ECG study, which OHIF has no viewport for):
// the viewer is opened only to hand OHIF the token, and its canvas is not required
const listOnly = process.env.OHIF_LIST_ONLY === '1';
const artifacts = path.resolve(
  process.env.OHIF_ARTIFACTS || path.join(here, '../../target/test-artifacts/ohif'),
);
const chromiumPath = process.env.DXHUB_TEST_CHROMIUM || '/usr/bin/chromium';
const timeout = Number(process.env.OHIF_TIMEOUT_MS || 90000);

function log(msg) {
  process.stderr.write(`[ohif-e2e ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

class Failure extends Error {}
function fail(msg) {
  throw new Failure(msg);
}

// ------------------------------------------------------------------ the run
async function main() {
  if (!base) fail('OHIF_URL is not set');
  if (!studyUid) fail('OHIF_STUDY_UID is not set');
  if (!fs.existsSync(chromiumPath)) fail(`Chromium not found at ${chromiumPath}`);
  fs.mkdirSync(artifacts, { recursive: true });
  const requests = [];
  const consoleLines = [];
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--headless=new',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      // playwright gives Chromium a fresh temporary profile (--user-data-dir) itself
      '--enable-unsafe-swiftshader',
      '--use-angle=swiftshader',
    ],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    const page = await context.newPage();
    page.setDefaultTimeout(timeout);
    page.on('console', (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => consoleLines.push(`[pageerror] ${e.message}`));
    const isDicomweb = (u) => /\/dicomweb(\/|$|\?)/.test(new URL(u).pathname + '/');
    page.on('response', (r) => {
      const req = r.request();
      if (!isDicomweb(r.url())) return;
      requests.push({
        method: req.method(),
        url: r.url(),
        status: r.status(),
        auth: (req.headers().authorization || '').replace(/(Bearer \S{6})\S*/, '$1…'),
        type: r.headers()['content-type'] || '',
      });
    });
    page.on('requestfailed', (req) => {
      if (!isDicomweb(req.url())) return;
      requests.push({
        method: req.method(),
        url: req.url(),
        status: 'failed: ' + (req.failure()?.errorText || '?'),
        auth: (req.headers().authorization || '').replace(/(Bearer \S{6})\S*/, '$1…'),
        type: '',
      });
    });

    // OHIF's first-visit tour and its "investigational use" banner cover the screenshots
    const dismissOverlays = async () => {
      for (const name of ['Skip all', 'Confirm and hide']) {
        const b = page.getByRole('button', { name, exact: true }).or(page.getByText(name, { exact: true }));
        if (await b.first().isVisible().catch(() => false)) {
          await b.first().click({ timeout: 2000 }).catch(() => {});
        }
      }
    };

    const listStep = async (how) => {
      log(`study list (${how}): waiting for the study's row`);
      // the list shows patient name, date, modalities, description and accession, not the
      // StudyInstanceUID: the row is recognised by OHIF_EXPECT (e.g. the accession number)
      await page.waitForFunction(
        (text) => {
          const body = document.body.innerText || '';
          // the list's pager reads "1-N of N" once results are in
          const m = body.match(/\b\d+\s*-\s*\d+\s+of\s+(\d+)/);
          return !!m && Number(m[1]) > 0 && (!text || body.includes(text));
        },
        expect,
        { timeout },
      ).catch(async (e) => {
        await page.screenshot({ path: path.join(artifacts, 'study-list-FAILED.png') });
        fail(
          `the study list did not show the study${expect ? ` (text ${JSON.stringify(expect)})` : ''}: ${e.message.split('\n')[0]}`,
        );
      });
      await dismissOverlays();
      await page.waitForTimeout(500); // let the row finish laying out for the picture
      const shot = path.join(artifacts, 'study-list.png');
      await page.screenshot({ path: shot });
      log(`study list shows the study; screenshot ${shot}`);
    };

    const viewerStep = async (url) => {
      log(`viewer: ${url.replace(/token=[^&]+/, 'token=…')}`);
      await page.goto(url, { waitUntil: 'domcontentloaded' });
      const canvas = page.locator('canvas.cornerstone-canvas').first();
      await canvas.waitFor({ state: 'visible', timeout }).catch(async (e) => {
        await page.screenshot({ path: path.join(artifacts, 'viewer-FAILED.png') });
        fail(`no cornerstone canvas appeared in the viewer: ${e.message.split('\n')[0]}`);
      });
      // poll the drawn canvas until it is non-uniform (the image has arrived and rendered)
      const deadline = Date.now() + timeout;
      let stats = null;
      let png = null;
      while (Date.now() < deadline) {
        png = await canvas.screenshot().catch(() => null);
        if (png) {
          stats = pixelStats(decodePng(png));
          if (stats.distinct >= 32 && stats.stddev >= 4) break;
        }
        await page.waitForTimeout(500);
      }
      if (png) fs.writeFileSync(path.join(artifacts, 'viewer-canvas.png'), png);
      await page.waitForTimeout(1000); // thumbnails and overlays, for the picture
      await dismissOverlays();
      await page.waitForTimeout(300);
      const shot = path.join(artifacts, 'viewer.png');
      await page.screenshot({ path: shot });
      if (!stats || stats.distinct < 32 || stats.stddev < 4) {
        fail(
          `the viewer's canvas stayed uniform (${JSON.stringify(stats)}); screenshot ${shot}`,
        );
      }
      log(`viewer drew the study: canvas ${stats.width}x${stats.height}, ${stats.distinct} distinct colours, luminance mean ${stats.mean} sd ${stats.stddev}; screenshot ${shot}`);
      return stats;
    };

    const viewerUrl =
      `${base}/viewer?StudyInstanceUIDs=${encodeURIComponent(studyUid)}` +
      (token ? `&token=${encodeURIComponent(token)}` : '');
    let stats;
    if (listOnly) {
      if (!token) fail('OHIF_LIST_ONLY needs OHIF_TOKEN');
      log(`viewer (token hand-over only): ${viewerUrl.replace(/token=[^&]+/, 'token=…')}`);
      await page.goto(viewerUrl, { waitUntil: 'domcontentloaded' });
      await page.waitForTimeout(5000);
      await page.screenshot({ path: path.join(artifacts, 'viewer.png') });
      await page.evaluate(() => {
        window.history.pushState({}, '', '/');
        window.dispatchEvent(new PopStateEvent('popstate', { state: {} }));
      });
      await listStep('reached from the viewer in-app');
      stats = null;
    } else if (token) {
      stats = await viewerStep(viewerUrl);
      // in-app navigation to the study list: the token stays in OHIF's
      // userAuthenticationService (a full reload would drop it)
      await page.evaluate(() => {
        window.history.pushState({}, '', '/');
        window.dispatchEvent(new PopStateEvent('popstate', { state: {} }));
      });
      await listStep('reached from the viewer in-app');
    } else {
      await page.goto(`${base}/`, { waitUntil: 'domcontentloaded' });
      await listStep('opened directly');
      stats = await viewerStep(viewerUrl);
    }

    // every DICOMweb request must have succeeded, and with a token, carried it
    const bad = requests.filter((r) => typeof r.status !== 'number' || r.status >= 400);
    const unauth = token ? requests.filter((r) => !r.auth.startsWith('Bearer ')) : [];
    if (requests.length === 0) fail('OHIF made no DICOMweb request');
    if (bad.length) {
      fail(
        `DICOMweb requests failed:\n` +
          bad.map((r) => `  ${r.method} ${r.url} -> ${r.status}`).join('\n'),
      );
    }
    if (unauth.length) {
      fail(
        `DICOMweb requests without the bearer token:\n` +
          unauth.map((r) => `  ${r.method} ${r.url}`).join('\n'),
      );
    }
    const summary = {
      ok: true,
      study: studyUid,
      canvas: stats,
      dicomweb_requests: requests.length,
      artifacts,
    };
    fs.writeFileSync(path.join(artifacts, 'result.json'), JSON.stringify(summary, null, 2) + '\n');
    process.stdout.write(JSON.stringify(summary) + '\n');
  } finally {
    fs.writeFileSync(
      path.join(artifacts, 'dicomweb-requests.log'),
      requests.map((r) => `${r.status}\t${r.method}\t${r.url}\t${r.auth}\t${r.type}`).join('\n') + '\n',
    );
    fs.writeFileSync(path.join(artifacts, 'console.log'), consoleLines.join('\n') + '\n');
    await browser.close().catch(() => {});
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(
      `ohif-e2e FAILED: ${e instanceof Failure ? e.message : e.stack || e}\n` +
        `(artifacts: ${artifacts})\n`,
    );
    process.exit(1);
  },
);
