#!/usr/bin/env python3
"""A permissive pynetdicom Storage SCP (bit-preserving), a peer for dxhub's SCU side.

Usage: pyn_recv.py --port P [--host 127.0.0.1] [--aet ANY-SCP] --out DIR [--ready-file F]

Accepts every storage SOP class pynetdicom knows (plus Verification) with every
transfer syntax in TRANSFER_SYNTAXES below, including HTJ2K and the video ones
that DCMTK 3.6.7's storescp does not accept (it also lacks JPEG Lossless .57 in
"+xa"). Each received instance is written to DIR/<SOPInstanceUID>.dcm as File
Meta Information + the data set bytes exactly as received (no decoding), and a
JSON line {"sop_instance", "sop_class", "transfer_syntax", "calling_aet", "path"}
is printed to stdout. Runs until killed (SIGTERM/SIGINT).
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import threading
from pathlib import Path

from pynetdicom import AE, _config, evt
from pynetdicom import transport as _transport
from pynetdicom.sop_class import _STORAGE_CLASSES, Verification

_config.LOG_HANDLER_LEVEL = "none"
_config.STORE_RECV_CHUNKED_DATASET = False

TRANSFER_SYNTAXES = [
    "1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.2",
    "1.2.840.10008.1.2.1.99",
    "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81",
    "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203",
    "1.2.840.10008.1.2.5",
    "1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.101", "1.2.840.10008.1.2.4.102",
    "1.2.840.10008.1.2.4.103", "1.2.840.10008.1.2.4.104", "1.2.840.10008.1.2.4.105",
    "1.2.840.10008.1.2.4.106", "1.2.840.10008.1.2.4.107", "1.2.840.10008.1.2.4.108",
]

_orig_create_socket = _transport.AssociationSocket._create_socket


def _create_socket_nodelay(self, address):
    sock = _orig_create_socket(self, address)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass
    return sock


_transport.AssociationSocket._create_socket = _create_socket_nodelay

_lock = threading.Lock()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--aet", default="ANY-SCP")
    ap.add_argument("--out", required=True)
    ap.add_argument("--ready-file", help="touch this file once listening")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def on_store(event):
        data = event.encoded_dataset(include_meta=True)
        cx = event.context
        ts = cx.transfer_syntax
        ts = ts if isinstance(ts, str) else ts[0]
        sop_instance = str(event.request.AffectedSOPInstanceUID)
        path = out / f"{sop_instance}.dcm"
        path.write_bytes(data)
        with _lock:
            sys.stdout.write(json.dumps({
                "sop_instance": sop_instance,
                "sop_class": str(cx.abstract_syntax),
                "transfer_syntax": str(ts),
                "calling_aet": event.assoc.requestor.ae_title,
                "path": str(path),
            }) + "\n")
            sys.stdout.flush()
        return 0x0000

    ae = AE(ae_title=args.aet)
    ae.require_called_aet = False
    ae.maximum_associations = 16
    ae.add_supported_context(Verification)
    for uid in sorted({str(u) for u in _STORAGE_CLASSES.values()}):
        ae.add_supported_context(uid, TRANSFER_SYNTAXES)
    server = ae.start_server((args.host, args.port), block=False,
                             evt_handlers=[(evt.EVT_C_STORE, on_store)])
    if args.ready_file:
        Path(args.ready_file).touch()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
