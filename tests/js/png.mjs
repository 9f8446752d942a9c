// PNG decoding and pixel statistics of Chromium screenshots, for the browser tests
// (ohif_e2e.mjs, viewer_images_e2e.mjs): a drawn image has non-uniform pixels.
import zlib from 'node:zlib';

// ------------------------------------------------------------------ PNG decoding
// Enough of PNG for Chromium's screenshots: 8-bit RGB/RGBA, non-interlaced.
export function decodePng(buf) {
  const sig = Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]);
  if (!buf.subarray(0, 8).equals(sig)) throw new Error('not a PNG');
  let off = 8;
  let width, height, depth, ctype, interlace;
  const idat = [];
  while (off < buf.length) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString('ascii', off + 4, off + 8);
    const data = buf.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      depth = data[8];
      ctype = data[9];
      interlace = data[12];
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
    off += 12 + len;
  }
  const channels = { 0: 1, 2: 3, 4: 2, 6: 4 }[ctype];
  if (depth !== 8 || !channels || interlace) {
    throw new Error(`unsupported PNG (depth ${depth}, color type ${ctype}, interlace ${interlace})`);
  }
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const px = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? px[y * stride + x - channels] : 0;
      const b = y > 0 ? px[(y - 1) * stride + x] : 0;
      const c = x >= channels && y > 0 ? px[(y - 1) * stride + x - channels] : 0;
      let v = line[x];
      if (f === 1) v += a;
      else if (f === 2) v += b;
      else if (f === 3) v += (a + b) >> 1;
      else if (f === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      px[y * stride + x] = v & 0xff;
    }
  }
  return { width, height, channels, px };
}

// Distinct colours and the spread of luminance of an image.
export function pixelStats(img) {
  const { width, height, channels, px } = img;
  const colours = new Set();
  let sum = 0, sum2 = 0;
  const n = width * height;
  for (let i = 0; i < n; i++) {
    const o = i * channels;
    const r = px[o], g = channels >= 3 ? px[o + 1] : r, b = channels >= 3 ? px[o + 2] : r;
    colours.add((r << 16) | (g << 8) | b);
    const l = 0.299 * r + 0.587 * g + 0.114 * b;
    sum += l;
    sum2 += l * l;
  }
  const mean = sum / n;
  return {
    width,
    height,
    distinct: colours.size,
    mean: Number(mean.toFixed(1)),
    stddev: Number(Math.sqrt(Math.max(0, sum2 / n - mean * mean)).toFixed(1)),
  };
}

