#!/usr/bin/env node
// The admin pages and the indicators dashboard of dxhub's web app in headless Chromium: a
// group admin logs in with a one-time code and, through the forms only, adds a village
// clinic, sets a population, adds a user, resets another user's TOTP, sets a clinic
// doctor's duty schedule, registers and revokes an ECG device, adds and removes an AE
// title, adds a pool member, adds a routing rule with its SLA and dry-runs the rules on a
// study, edits a report template; then opens
// the dashboard and reads its figures and charts. Prints one JSON line (what the pages
// showed; the Rust test compares it with the API); exits 1 with a message on failure.
//
// Environment: VIEWER_URL, VIEWER_LOGIN, VIEWER_PASSWORD, VIEWER_TOTP_SECRET,
// VIEWER_STUDY (a study UID to dry-run), VIEWER_RESET_LOGIN (a user whose TOTP to reset),
// VIEWER_DUTY_LOGIN (a clinic user whose duty schedule to set),
// VIEWER_ARTIFACTS, DXHUB_TEST_CHROMIUM, DXHUB_TEST_NODE_MODULES.

import fs from 'node:fs';
import path from 'node:path';
import { artifacts, base, launch, login as logIn } from './viewer_common.mjs';

const env = process.env;
const text = async (loc) => (await loc.innerText()).replace(/\s+/g, ' ').trim();

async function main() {
  for (const k of ['VIEWER_URL', 'VIEWER_LOGIN', 'VIEWER_PASSWORD', 'VIEWER_TOTP_SECRET', 'VIEWER_STUDY', 'VIEWER_RESET_LOGIN', 'VIEWER_DUTY_LOGIN']) {
    if (!env[k]) throw new Error(`${k} missing`);
  }
  fs.mkdirSync(artifacts, { recursive: true });
  const browser = await launch();
  const result = { ok: false };
  let page;
  try {
    page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
    page.setDefaultTimeout(30000);
    page.on('dialog', (d) => (d.type() === 'prompt' ? d.accept('Another-pass-2026') : d.accept()));
    const shot = async (name) => page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
    const tab = async (name) => {
      await page.locator(`nav.adm-tabs button[data-page=${name}]`).click();
      await page.locator(`nav.adm-tabs button[data-page=${name}].active`).waitFor();
    };
    await logIn(page, env.VIEWER_LOGIN, env.VIEWER_PASSWORD, { secret: env.VIEWER_TOTP_SECRET });
    await page.locator('nav.main-nav a[data-nav="/admin"]').click();
    await page.locator('table[data-table=institutions]').waitFor();

    // institutions: a new village clinic under the township, with its population
    let form = page.locator('form[data-form=institution]');
    await form.locator('input[name=name]').fill('新村卫生室');
    await form.locator('select[name=level]').selectOption('village');
    await form.locator('select[name=parent]').selectOption('城关镇卫生院');
    await form.locator('input[name=population]').fill('1200');
    await form.getByRole('button', { name: '新增' }).click();
    const village = page.locator('tr[data-name="新村卫生室"]');
    await village.waitFor();
    result.institution_row = await text(village);
    const pop = page.locator('tr[data-name="城关镇卫生院"] input.population');
    const patched = page.waitForResponse((r) => r.url().includes('/api/v1/institutions/') && r.request().method() === 'PATCH');
    await pop.fill('35000');
    await pop.press('Tab');
    result.population_status = (await patched).status();
    await shot('a1-institutions');

    // users: add a reader; reset another user's TOTP
    await tab('users');
    form = page.locator('form[data-form=user]');
    await form.locator('input[name=login]').fill('web.reader');
    await form.locator('select[name=role]').selectOption('reader');
    await form.locator('select[name=institution]').selectOption('县人民医院');
    await form.locator('input[name=password]').fill('Web-reader-pass-2026');
    await form.getByRole('button', { name: '新增' }).click();
    await page.locator('tr[data-login="web.reader"]').waitFor();
    const reset = page.locator(`tr[data-login="${env.VIEWER_RESET_LOGIN}"]`);
    result.before_reset = await text(reset.locator('td.totp'));
    await reset.locator('button.reset-totp').click();
    await page.locator(`tr[data-login="${env.VIEWER_RESET_LOGIN}"] td.totp:has-text("未绑定")`).waitFor();
    result.after_reset = await text(reset.locator('td.totp'));
    // a clinic doctor's duty schedule (critical values alert the users on duty)
    const duty = page.locator(`tr[data-login="${env.VIEWER_DUTY_LOGIN}"] input.duty`);
    const dutyPut = page.waitForResponse((r) => r.url().includes('/duty-schedule') && r.request().method() === 'PUT');
    await duty.fill('mon-fri 08:00-17:30; sat,sun 08:00-12:00');
    await duty.press('Tab');
    result.duty_status = (await dutyPut).status();
    result.reader_has_duty = (await page.locator(`tr[data-login="${env.VIEWER_RESET_LOGIN}"] input.duty`).count()) > 0;
    await shot('a2-users');

    // devices: register (the token is shown once), then revoke
    await tab('devices');
    form = page.locator('form[data-form=device]');
    await form.locator('input[name=serial]').fill('ECG-WEB-01');
    await form.locator('input[name=model]').fill('XY-1200');
    await form.locator('select[name=institution]').selectOption('新村卫生室');
    await form.getByRole('button', { name: '新增' }).click();
    await page.locator('p.token code').waitFor();
    result.device_token = await text(page.locator('p.token code'));
    const dev = page.locator('tr[data-serial="ECG-WEB-01"]');
    await dev.locator('button.revoke').click();
    await page.locator('tr[data-serial="ECG-WEB-01"]:has-text("已吊销")').waitFor();
    await shot('a3-devices');

    // AE titles: add, see, remove
    await tab('ae');
    form = page.locator('form[data-form=ae]');
    await form.locator('input[name=ae_title]').fill('XINCUN_DR');
    await form.locator('select[name=institution]').selectOption('新村卫生室');
    await form.locator('select[name=priority]').selectOption('urgent');
    await form.getByRole('button', { name: '新增' }).click();
    const ae = page.locator('tr[data-ae="XINCUN_DR"]');
    await ae.waitFor();
    result.ae_row = await text(ae);
    await ae.locator('button.remove').click();
    await ae.waitFor({ state: 'detached' });
    result.ae_removed = true;

    // pools: the new reader joins the ECG pool
    await tab('pools');
    await page.locator('tr[data-pool="ecg"] button.members').click();
    form = page.locator('form[data-form=member]');
    await form.locator('select[name=user]').selectOption({ label: 'web.reader' });
    await form.locator('input[name=max_open_claims]').fill('3');
    await form.getByRole('button', { name: '新增' }).click();
    const member = page.locator('tr[data-member="web.reader"]');
    await member.waitFor();
    result.member_row = await text(member);
    await shot('a4-pools');

    // routing rules: a rule with its SLA; then a dry run on a study
    await tab('rules');
    await page.locator('table[data-table=rules] tbody tr').first().waitFor();
    form = page.locator('form[data-form=rule]');
    await form.locator('input[name=position]').fill('5');
    await form.locator('input[name=name]').fill('村卫生室DR加急');
    await form.locator('input[name=conditions]').fill('{"modalities":["DX","CR"],"levels":["village"]}');
    await form.locator('select[name=pool]').selectOption({ index: 0 });
    await form.locator('select[name=priority]').selectOption('urgent');
    await form.locator('input[name=sla_minutes]').fill('45');
    await form.getByRole('button', { name: '新增' }).click();
    const rule = page.locator('tr[data-rule="村卫生室DR加急"]');
    await rule.waitFor();
    result.rule_row = await text(rule);
    const dry = page.locator('form[data-form=dry-run]');
    await dry.locator('input[name=study]').fill(env.VIEWER_STUDY);
    await dry.getByRole('button', { name: '试运行' }).click();
    await page.locator('.dry-run-result').waitFor();
    result.dry_run = await text(page.locator('.dry-run-result p'));
    await shot('a5-rules');

    // templates: rename the chest X-ray template through its JSON definition
    await tab('templates');
    const tpl = page.locator('table[data-table=templates] tbody tr').first();
    await tpl.waitFor();
    result.template_code = await tpl.getAttribute('data-code');
    await tpl.locator('button.edit').click();
    const area = page.locator('form[data-form=definition] textarea');
    const def = JSON.parse(await area.inputValue());
    def.name = `${def.name}（修订）`;
    await area.fill(JSON.stringify(def, null, 2));
    await page.locator('form[data-form=definition]').getByRole('button', { name: '保存' }).click();
    await page.locator(`tr[data-code="${result.template_code}"]:has-text("（修订）")`).waitFor();
    result.template_name = def.name;
    await tab('exams');
    await page.locator('table[data-table=exam_types] tbody tr').first().waitFor();
    result.exam_rows = await page.locator('table[data-table=exam_types] tbody tr').count();

    // the indicators dashboard
    await page.locator('nav.main-nav a[data-nav="/dashboard"]').click();
    await page.locator('.kpi[data-kpi=studies] strong').waitFor();
    await page.waitForFunction(() => document.querySelector('.kpi[data-kpi=studies] strong')?.textContent !== '—');
    result.kpis = {};
    for (const k of ['studies', 'per_10k', 'coverage', 'grassroots', 'turnaround', 'criticals', 'lookups']) {
      result.kpis[k] = await text(page.locator(`.kpi[data-kpi=${k}] strong`));
    }
    // every chart drew on its canvas (some non-white pixels)
    await page.waitForFunction(() => document.querySelectorAll('.chart canvas').length >= 7);
    result.charts = await page.evaluate(() =>
      [...document.querySelectorAll('.chart')].map((el) => {
        const c = el.querySelector('canvas');
        const points = Number(el.getAttribute('data-points') || 0);
        if (!c) return [el.getAttribute('data-chart'), 0, points];
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let ink = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && (d[i] < 200 || d[i + 1] < 200 || d[i + 2] < 200)) ink++;
        return [el.getAttribute('data-chart'), ink, points];
      }),
    );
    const csvHref = await page.locator('section[data-panel=volumes] a.csv').getAttribute('href');
    const csv = await page.request.get(new URL(csvHref, base).toString());
    result.csv_status = csv.status();
    result.csv_type = csv.headers()['content-type'];
    result.csv_head = (await csv.text()).split('\n')[0];
    await shot('a6-dashboard');
    // English
    await page.getByRole('button', { name: 'English' }).click();
    result.english_title = await text(page.locator('section[data-panel=volumes] h3'));
    result.ok = true;
  } catch (e) {
    // what the page showed when it failed
    await page?.screenshot({ path: path.join(artifacts, 'a-failure.png'), fullPage: true }).catch(() => undefined);
    throw e;
  } finally {
    await browser.close();
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((e) => {
  process.stderr.write(`[viewer-admin-e2e] FAILED: ${e.stack || e}\n`);
  process.exit(1);
});
