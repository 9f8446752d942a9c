// Shared by the web app's browser tests (viewer_*.mjs): playwright-core driving Debian's
// Chromium (it never downloads a browser), RFC 6238 codes, and logging in through the app.
import crypto from 'node:crypto';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

/// VIEWER_URL without a trailing slash, and the artifacts directory.
export const base = (process.env.VIEWER_URL || '').replace(/\/+$/, '');
export const artifacts = path.resolve(
  process.env.VIEWER_ARTIFACTS || path.join(here, '../../target/test-artifacts/viewer'),
);

/// Headless Chromium; `webgl` adds SwiftShader for cornerstone3D's rendering.
export async function launch({ webgl = false } = {}) {
  const modulesDir = process.env.DXHUB_TEST_NODE_MODULES || path.join(here, 'node_modules');
  const require = createRequire(path.join(modulesDir, 'noop.js'));
  const { chromium } = require('playwright-core');
  const args = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--no-first-run'];
  if (webgl) args.push('--enable-unsafe-swiftshader', '--use-angle=swiftshader');
  return chromium.launch({
    executablePath: process.env.DXHUB_TEST_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args,
  });
}

/// RFC 6238: HMAC-SHA1, 30 s steps, 6 digits.
export function totp(base32) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of base32.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 1000 / 30)));
  const h = crypto.createHmac('sha1', key).update(counter).digest();
  const o = h[h.length - 1] & 15;
  return String((h.readUInt32BE(o) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

/// Log in through the app's form (Chinese labels); with `secret`, answer the one-time
/// code prompt. `before` runs with the empty form shown (e.g. a screenshot).
export async function login(page, user, password, { secret = null, before = null } = {}) {
  await page.goto(`${base}/`);
  await page.getByRole('button', { name: '登录' }).waitFor();
  if (before) await before();
  await page.fill('input[name=login]', user);
  await page.fill('input[name=password]', password);
  await page.getByRole('button', { name: '登录' }).click();
  if (secret) {
    await page.locator('input[name=totp]').waitFor();
    await page.fill('input[name=totp]', totp(secret));
    await page.getByRole('button', { name: '登录' }).click();
  }
}
