"""QRS detection on scipy's ecg.dat (MIT-BIH 208, MLII, 5 min, 360 Hz): dxhub against
wfdb's XQRS and neurokit2's ecg_peaks, pairwise agreement (Se / +P, ±50 ms).

    python qrs_peers.py ECG_UV_TXT DXHUB_BEATS_TXT OUT_DIR

ECG_UV_TXT: one sample (µV) per line (tests/py/ecg_qrs_ecgdat.py writes it).
DXHUB_BEATS_TXT: dxhub's beats, one sample index per line (the ecg_qrs example).
Writes OUT_DIR/{xqrs,neurokit}.txt and OUT_DIR/disagreements.txt (every beat that not all
three detectors found, with who found it), and prints a Markdown table.
"""

import os
import sys

import numpy as np
import neurokit2 as nk
import wfdb
from wfdb import processing

FS = 360
WINDOW = int(0.05 * FS)


def match(ref, test):
    """Greedy nearest matching within ±WINDOW; returns (tp, fn, fp)."""
    ref = np.asarray(sorted(ref))
    test = np.asarray(sorted(test))
    used = np.zeros(len(test), bool)
    tp = 0
    j = 0
    for r in ref:
        while j < len(test) and test[j] < r - WINDOW:
            j += 1
        best, bestd = -1, None
        k = j
        while k < len(test) and test[k] <= r + WINDOW:
            if not used[k]:
                d = abs(int(test[k]) - int(r))
                if bestd is None or d < bestd:
                    best, bestd = k, d
            k += 1
        if best >= 0:
            used[best] = True
            tp += 1
    return tp, len(ref) - tp, int((~used).sum())


def main():
    sig_path, ours_path, out = sys.argv[1:4]
    os.makedirs(out, exist_ok=True)
    uv = np.loadtxt(sig_path)
    mv = uv / 1000.0
    ours = np.loadtxt(ours_path, dtype=int, ndmin=1)

    xq = processing.XQRS(sig=mv, fs=FS)
    xq.detect(verbose=False)
    xqrs = np.asarray(xq.qrs_inds, dtype=int)
    # XQRS marks the QRS at its own fiducial; move each to the local |deflection| peak
    # (±50 ms), the same rule used for the other detectors' output, as is usual before
    # comparing (wfdb.processing.correct_peaks).
    xqrs = processing.correct_peaks(mv, xqrs, search_radius=WINDOW, smooth_window_size=int(0.15 * FS), peak_dir="compare")

    cleaned = nk.ecg_clean(mv, sampling_rate=FS)
    _, info = nk.ecg_peaks(cleaned, sampling_rate=FS)
    neuro = np.asarray(info["ECG_R_Peaks"], dtype=int)

    np.savetxt(os.path.join(out, "xqrs.txt"), xqrs, fmt="%d")
    np.savetxt(os.path.join(out, "neurokit.txt"), neuro, fmt="%d")

    dets = {"dxhub": ours, "wfdb XQRS": xqrs, "neurokit2": neuro}
    print(f"Beats found: " + ", ".join(f"{k} {len(v)}" for k, v in dets.items()))
    print()
    print("| reference | tested | ref beats | TP | FN | FP | Se % | +P % |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    names = list(dets)
    for a in names:
        for b in names:
            if a == b:
                continue
            tp, fn, fp = match(dets[a], dets[b])
            print(f"| {a} | {b} | {len(dets[a])} | {tp} | {fn} | {fp} | "
                  f"{100 * tp / max(tp + fn, 1):.2f} | {100 * tp / max(tp + fp, 1):.2f} |")

    # Every position found by at least one detector, with who found it.
    allpos = sorted(set(int(v) for d in dets.values() for v in d))
    clusters = []
    for p in allpos:
        if clusters and p - clusters[-1][-1] <= WINDOW:
            clusters[-1].append(p)
        else:
            clusters.append([p])
    lines = []
    for c in clusters:
        lo, hi = c[0] - WINDOW, c[-1] + WINDOW
        who = [k for k, v in dets.items() if np.any((v >= lo) & (v <= hi))]
        if len(who) < len(dets):
            lines.append(f"{c[0]}\t{c[0] / FS:.2f} s\t{','.join(who)}")
    with open(os.path.join(out, "disagreements.txt"), "w") as f:
        f.write("\n".join(lines) + ("\n" if lines else ""))
    print()
    print(f"{len(clusters)} distinct beats found by any detector; {len(lines)} not found by all three "
          f"(listed in {os.path.join(out, 'disagreements.txt')}).")


if __name__ == "__main__":
    main()
