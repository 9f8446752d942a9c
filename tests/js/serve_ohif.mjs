#!/usr/bin/env node
// Serve the prebuilt OHIF viewer (`npm pack @ohif/app`, its `package/dist/`) for a test:
// static files with SPA fallback to index.html, `/app-config.js` replaced by one generated
// from deploy/ohif/app-config.js with the DICOMweb root filled in, and optionally a
// same-origin proxy of `/dicomweb/*` to the archive.
//
//   node serve_ohif.mjs --dist DIR --dicomweb URL [--proxy] [--port 0] [--template FILE]
//
//   --dist DIR       the OHIF dist directory (index.html, app.bundle.*.js, …)
//   --dicomweb URL   the archive's DICOMweb root, e.g. http://127.0.0.1:8080/dicomweb
//   --proxy          OHIF talks to its own origin (`<origin>/dicomweb`); this server forwards
//                    `/dicomweb/*` to URL (headers, including Authorization, pass through).
//                    Without it OHIF calls URL directly (cross-origin: the archive must
//                    answer CORS for this server's origin).
//   --port N         listen port on 127.0.0.1 (0 = any free port; default 0)
//   --template FILE  the app-config template (default: deploy/ohif/app-config.js)
//
// On start it prints one JSON line on stdout: {"event":"ready","url":"http://127.0.0.1:PORT",
// "dicomweb":"<root OHIF uses>"}; it stops on SIGTERM/SIGINT. Node's standard library only.

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

function parseArgs(argv) {
  const out = {
    port: 0,
    proxy: false,
    template: path.resolve(here, '../../deploy/ohif/app-config.js'),
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--dist') out.dist = next();
    else if (a === '--dicomweb') out.dicomweb = next();
    else if (a === '--proxy') out.proxy = true;
    else if (a === '--port') out.port = Number(next());
    else if (a === '--template') out.template = next();
    else throw new Error(`unknown argument ${a}`);
  }
  if (!out.dist || !out.dicomweb) {
    throw new Error('usage: serve_ohif.mjs --dist DIR --dicomweb URL [--proxy] [--port N]');
  }
  out.dicomweb = out.dicomweb.replace(/\/+$/, '');
  return out;
}

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
};

// The template's placeholder root, replaced by the real one.
const PLACEHOLDER = 'https://dxhub.example/dicomweb';

function appConfig(templatePath, root) {
  const text = fs.readFileSync(templatePath, 'utf8');
  if (!text.includes(PLACEHOLDER)) {
    throw new Error(`${templatePath} does not contain the placeholder ${PLACEHOLDER}`);
  }
  return text.split(PLACEHOLDER).join(root);
}

function sendFile(res, file, method) {
  const ext = path.extname(file).toLowerCase();
  const st = fs.statSync(file);
  res.writeHead(200, {
    'content-type': TYPES[ext] || 'application/octet-stream',
    'content-length': st.size,
    'cache-control': 'no-cache',
    // cornerstone's WASM decoders and SharedArrayBuffer want cross-origin isolation;
    // OHIF works without it, and with it a cross-origin archive would need CORP headers.
  });
  if (method === 'HEAD') return res.end();
  fs.createReadStream(file).pipe(res);
}

function proxy(req, res, target) {
  // target: URL of the archive's DICOMweb root; req.url starts with /dicomweb
  const rest = req.url.slice('/dicomweb'.length);
  const url = new URL(target.href.replace(/\/+$/, '') + rest);
  // as a reverse proxy does (nginx: proxy_set_header X-Forwarded-Host $host): the archive
  // then writes RetrieveURL and BulkDataURI against this origin, which the viewer can reach
  const headers = {
    ...req.headers,
    host: url.host,
    'x-forwarded-host': req.headers.host,
    'x-forwarded-proto': 'http',
  };
  delete headers.origin; // same-origin for the archive
  delete headers.referer;
  const up = http.request(
    url,
    { method: req.method, headers },
    (upRes) => {
      res.writeHead(upRes.statusCode || 502, upRes.headers);
      upRes.pipe(res);
    },
  );
  up.on('error', (e) => {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
    res.end(`proxy error: ${e.message}\n`);
  });
  req.pipe(up);
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const dist = path.resolve(opts.dist);
  if (!fs.existsSync(path.join(dist, 'index.html'))) {
    throw new Error(`${dist}/index.html not found: is --dist an OHIF dist directory?`);
  }
  const target = new URL(opts.dicomweb);
  let config = null; // generated once the port is known (same-origin root needs it)

  const server = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://localhost');
    if (opts.proxy && (u.pathname === '/dicomweb' || u.pathname.startsWith('/dicomweb/'))) {
      return proxy(req, res, target);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' });
      return res.end();
    }
    if (u.pathname === '/app-config.js') {
      res.writeHead(200, {
        'content-type': 'text/javascript; charset=utf-8',
        'cache-control': 'no-store',
      });
      return res.end(req.method === 'HEAD' ? undefined : config);
    }
    let rel;
    try {
      rel = decodeURIComponent(u.pathname);
    } catch {
      res.writeHead(400);
      return res.end();
    }
    const file = path.join(dist, path.normalize(rel));
    if (!file.startsWith(dist + path.sep) && file !== dist) {
      res.writeHead(403);
      return res.end();
    }
    if (fs.existsSync(file) && fs.statSync(file).isFile()) return sendFile(res, file, req.method);
    // SPA fallback: client-side routes (/viewer, /, /local, …) get index.html; missing
    // assets (a path with an extension) get 404 so a broken build is visible.
    if (path.extname(rel) && !rel.endsWith('.html')) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      return res.end('not found\n');
    }
    return sendFile(res, path.join(dist, 'index.html'), req.method);
  });

  server.listen(opts.port, '127.0.0.1', () => {
    const { port } = server.address();
    const origin = `http://127.0.0.1:${port}`;
    const root = opts.proxy ? `${origin}/dicomweb` : opts.dicomweb;
    config = appConfig(opts.template, root);
    process.stdout.write(JSON.stringify({ event: 'ready', url: origin, dicomweb: root }) + '\n');
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // a test that dies leaves no server behind
  process.stdin.on('end', () => {
    if (process.env.SERVE_OHIF_EXIT_ON_STDIN_EOF === '1') stop();
  });
  if (process.env.SERVE_OHIF_EXIT_ON_STDIN_EOF === '1') process.stdin.resume();
}

try {
  main();
} catch (e) {
  process.stderr.write(`serve_ohif: ${e.message}\n`);
  process.exit(2);
}
