"""scipy's ``ecg.dat`` (MIT-BIH Arrhythmia Database record 208, MLII, first 5 minutes,
360 Hz) without the internet: scipy < 1.12 wheels bundled it as ``scipy/misc/ecg.dat``
(a NumPy .npz holding 11-bit ADC values; mV = (adc - 1024) / 200). This script downloads
one such wheel from PyPI with pip (no install, no dependencies), extracts the file, and
writes the samples in µV, one per line.

    python ecg_qrs_ecgdat.py CACHE_DIR            # prints the path of CACHE_DIR/ecg_uv.txt

The wheel is cached in CACHE_DIR, so the download happens once. Only the standard library
and pip are needed (the .npz is read with zipfile and the .npy header parsed by hand), so
it runs in any venv whatever NumPy it has.
"""

import ast
import os
import struct
import subprocess
import sys
import zipfile

SCIPY_WHEEL = "scipy==1.11.4"
PLATFORM = "manylinux2014_x86_64"
PY_VERSION = "3.11"


def wheel_path(cache):
    for name in sorted(os.listdir(cache)):
        if name.startswith("scipy-1.11.4-") and name.endswith(".whl"):
            return os.path.join(cache, name)
    return None


def fetch(cache):
    os.makedirs(cache, exist_ok=True)
    whl = wheel_path(cache)
    if whl is None:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--only-binary=:all:", "--platform", PLATFORM, "--python-version", PY_VERSION,
             "--disable-pip-version-check", "-d", cache, SCIPY_WHEEL],
            check=True, stdout=sys.stderr,
        )
        whl = wheel_path(cache)
    if whl is None:
        raise SystemExit("scipy 1.11.4 wheel not downloaded")
    with zipfile.ZipFile(whl) as w:
        return w.read("scipy/misc/ecg.dat")


def read_npz_uint(npz_bytes, key="ecg"):
    """The 1-D integer array `key` of an .npz, without NumPy."""
    import io
    with zipfile.ZipFile(io.BytesIO(npz_bytes)) as z:
        raw = z.read(key + ".npy")
    if raw[:6] != b"\x93NUMPY":
        raise SystemExit("not an .npy")
    major = raw[6]
    if major == 1:
        hlen = struct.unpack("<H", raw[8:10])[0]
        start = 10
    else:
        hlen = struct.unpack("<I", raw[8:12])[0]
        start = 12
    header = ast.literal_eval(raw[start:start + hlen].decode("latin1"))
    descr, shape = header["descr"], header["shape"]
    codes = {"<u2": "H", "<i2": "h", "<u4": "I", "<i4": "i", "<i8": "q", "<u8": "Q"}
    if descr not in codes or header.get("fortran_order") or len(shape) != 1:
        raise SystemExit(f"unexpected array {header}")
    fmt = "<%d%s" % (shape[0], codes[descr])
    data = raw[start + hlen:]
    return list(struct.unpack(fmt, data[:struct.calcsize(fmt)]))


def main():
    cache = sys.argv[1] if len(sys.argv) > 1 else "target/ecg-data"
    out = os.path.join(cache, "ecg_uv.txt")
    if not os.path.exists(out):
        adc = read_npz_uint(fetch(cache))
        tmp = out + ".tmp"
        with open(tmp, "w") as f:
            for v in adc:
                f.write("%.1f\n" % ((v - 1024) / 200.0 * 1000.0))
        os.replace(tmp, out)
    print(out)


if __name__ == "__main__":
    main()
