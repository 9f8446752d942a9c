#!/usr/bin/env node
// The clinic portal of dxhub's web app in headless Chromium: a clinic doctor logs in,
// sees the studies the clinic sent with their progress (received → queued → reading →
// reported), the critical-value banner and the signed report, opens its PDF, acknowledges the
// critical value (the banner goes), looks the patient up for recognised results and opens
// the recognised ECG from the result.
// Prints one JSON line; exits 1 with a message on stderr on failure.
//
// Environment: VIEWER_URL, VIEWER_LOGIN, VIEWER_PASSWORD, VIEWER_REPORT_ID,
// VIEWER_PATIENT_ID, VIEWER_SENT_REPORTED and VIEWER_SENT_QUEUED (study UIDs shown as
// reported and queued in the sent-studies list; all required), VIEWER_HIDDEN_STUDY (a
// study of another institution the user may not see), VIEWER_ARTIFACTS, DXHUB_TEST_CHROMIUM,
// DXHUB_TEST_NODE_MODULES (as viewer_e2e.mjs).

import fs from 'node:fs';
import path from 'node:path';
import { artifacts, base, launch, login as logIn } from './viewer_common.mjs';

const { VIEWER_LOGIN: login, VIEWER_PASSWORD: password, VIEWER_REPORT_ID: reportId, VIEWER_PATIENT_ID: patientId } = process.env;

async function main() {
  if (!base || !login || !password || !reportId || !patientId) throw new Error('VIEWER_* variables missing');
  fs.mkdirSync(artifacts, { recursive: true });
  const browser = await launch();
  const result = { ok: false };
  try {
    const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
    page.setDefaultTimeout(30000);
    const shot = async (name) => page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
    // a wrong password first: the refusal in Chinese, not the server's English
    await logIn(page, login, `${password}-wrong`);
    result.login_refused = (await page.locator('.login [role=alert]').innerText()).trim();
    await logIn(page, login, password);
    // the critical value and the signed report
    const banner = page.locator('form.critical-banner');
    await banner.waitFor();
    result.banner = (await banner.innerText()).replace(/\s+/g, ' ').trim();
    const row = page.locator(`tr[data-report="${reportId}"]`);
    await row.waitFor();
    result.report_row = (await row.innerText()).replace(/\s+/g, ' ').trim();
    // the studies the clinic sent: where each is, and the report of the finished one
    const reported = page.locator(`table.sent-studies tr[data-study="${process.env.VIEWER_SENT_REPORTED}"][data-status=reported]`);
    const queued = page.locator(`table.sent-studies tr[data-study="${process.env.VIEWER_SENT_QUEUED}"][data-status=queued]`);
    // 102 sent studies: the newest 100 first (the queued ECG is the newest), the rest
    // (the reported ECG is the oldest) on request
    await queued.waitFor();
    const rows = page.locator('table.sent-studies tbody tr[data-study]');
    result.sent_rows_first_page = await rows.count();
    await page.locator('button.more').click();
    await page.waitForFunction(() => document.querySelectorAll('table.sent-studies tbody tr[data-study]').length > 100);
    result.sent_rows_after_more = await rows.count();
    await page.locator('button.more').waitFor({ state: 'detached' });
    await reported.waitFor();
    result.sent = { reported: await reported.innerText(), queued: await queued.innerText() };
    result.sent_reported_step = (await reported.locator('.step.now').innerText()).trim();
    result.sent_queued_step = (await queued.locator('.step.now').innerText()).trim();
    const link = await reported.locator('a.pdf').getAttribute('href');
    const rep = await page.request.get(new URL(link, base).toString());
    result.sent_report_status = rep.status();
    result.sent_report_magic = (await rep.body()).subarray(0, 5).toString('latin1');
    await shot('c1-portal');

    // the PDF behind the link, with the page's session
    const href = await row.locator('a.pdf').getAttribute('href');
    const pdf = await page.request.get(new URL(href, base).toString());
    result.pdf_status = pdf.status();
    result.pdf_type = pdf.headers()['content-type'];
    result.pdf_magic = (await pdf.body()).subarray(0, 5).toString('latin1');
    // acknowledge: the banner goes
    await banner.locator('input[name=ack_name]').fill('张医生');
    await banner.locator('input[name=ack_action]').fill('已电话通知患者转诊');
    await banner.getByRole('button', { name: '确认接收' }).click();
    await banner.waitFor({ state: 'detached' });
    result.acknowledged = true;
    await shot('c2-acknowledged');
    // recognition lookup by patient ID
    await page.fill('section.recognition input[name=patient]', patientId);
    await page.getByRole('button', { name: '查询' }).click();
    const hit = page.locator(`section.recognition tr[data-report="${reportId}"]`);
    await hit.waitFor();
    result.recognition_row = (await hit.innerText()).replace(/\s+/g, ' ').trim();
    await shot('c3-recognition');
    // its images link opens the recognised ECG (a new tab)
    const [tab] = await Promise.all([page.context().waitForEvent('page'), hit.locator('a.images').click()]);
    await tab.locator('section.ecg svg g.lead').first().waitFor();
    result.recognition_leads = await tab.locator('section.ecg svg g.lead').count();
    // the reading page leads a clinic user back to the portal, not to a worklist
    result.reading_back = (await tab.locator('section.reading a.back').innerText()).trim();
    // another institution's study (the county's own ECG): the same answer as an unknown
    // UID, and the reading page says there is nothing to show instead of staying blank
    if (process.env.VIEWER_HIDDEN_STUDY) {
      await tab.goto(`${base}/read/${process.env.VIEWER_HIDDEN_STUDY}`);
      const empty = tab.locator('section.reading p.empty-study');
      await empty.waitFor();
      result.hidden_study = (await empty.innerText()).trim();
      result.hidden_study_leads = await tab.locator('section.ecg svg g.lead').count();
      result.hidden_study_errors = await tab.locator('section.reading .error').count();
      await tab.screenshot({ path: path.join(artifacts, 'c3b-hidden-study.png') });
    }
    await tab.close();
    // the clinic's devices and AE titles: its own, none of the county's
    const dev = page.locator('table.setup-devices tr[data-serial="ECG-CLINIC-1"]');
    await dev.waitFor();
    result.setup_device = (await dev.innerText()).replace(/\s+/g, ' ').trim();
    result.setup_aes = await page.locator('table.setup-aes tr[data-ae]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-ae')));
    await page.locator('section.setup').scrollIntoViewIfNeeded();
    await shot('c4-setup');
    result.ok = true;
  } finally {
    await browser.close();
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((e) => {
  process.stderr.write(`[viewer-clinic-e2e] FAILED: ${e.stack || e}\n`);
  process.exit(1);
});
