#!/usr/bin/env python3
"""pynetdicom storage SCU for the dxhub tests.

Send files, each exactly as stored (no transcoding), over ONE association:
  pyn_send.py --host H --port P --aet CALLING --aec CALLED [--ts-exact] FILE...
    For each distinct (SOP Class, Transfer Syntax) pair among the files one
    presentation context is proposed, carrying only the file's own transfer
    syntax (--ts-exact is the default and only behaviour; the flag is accepted
    for readability). The data set bytes are streamed from the file after the
    File Meta Information, untouched (pynetdicom's STORE_SEND_CHUNKED_DATASET).
    Prints one JSON line per file: {"path": ..., "status": int}
    (status null plus "error" when the file could not be sent).
    A file whose context the peer rejected prints status null, "error" and
    "context_result" (the presentation context result code).
    Exit 0 if the association was accepted, 1 if it was rejected (after
    printing {"rejected": {"result", "source", "reason", ...}}), 2 if the peer
    could not be reached or aborted the association during negotiation.

Negotiate one abstract syntax only:
  pyn_send.py --host H --port P --aet A --aec B --propose-only SOPCLASS_UID [--ts UID ...]
    Prints {"accepted": bool, "result": int, ...}; result is the presentation
    context result (0 acceptance, 1 user rejection, 2 no reason, 3 abstract
    syntax not supported, 4 transfer syntaxes not supported).
    Exit 0 when the association was not rejected, 1 when it was.

List pynetdicom's storage SOP classes:
  pyn_send.py --list-storage-classes [--with-names]
    Prints a JSON array of UIDs (or of {"keyword", "uid"} with --with-names).

TCP_NODELAY is set on pynetdicom's socket (it has no switch for it), so a
C-STORE exchange does not wait on Nagle's algorithm.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from pathlib import Path

from pydicom.filereader import read_file_meta_info
from pynetdicom import AE, _config
from pynetdicom import transport as _transport
from pynetdicom.sop_class import _STORAGE_CLASSES

_config.STORE_SEND_CHUNKED_DATASET = True  # send the stored bytes, never re-encode
_config.LOG_HANDLER_LEVEL = "none"

_orig_create_socket = _transport.AssociationSocket._create_socket


def _create_socket_nodelay(self, address):
    sock = _orig_create_socket(self, address)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass
    return sock


_transport.AssociationSocket._create_socket = _create_socket_nodelay

DEFAULT_TS = [
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
]


def emit(obj) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def make_ae(args) -> AE:
    ae = AE(ae_title=args.aet)
    ae.acse_timeout = args.timeout
    ae.dimse_timeout = args.timeout
    ae.network_timeout = args.timeout
    ae.connection_timeout = args.timeout
    return ae


def rejection(assoc) -> dict:
    prim = getattr(assoc.acceptor, "primitive", None)
    return {
        "result": getattr(prim, "result", None),
        "source": getattr(prim, "result_source", None),
        "reason": getattr(prim, "diagnostic", None),
        "result_str": getattr(prim, "result_str", None),
        "source_str": getattr(prim, "source_str", None),
        "reason_str": getattr(prim, "reason_str", None),
    }


def cmd_list(args) -> int:
    if args.with_names:
        out = [{"keyword": k, "uid": str(v)} for k, v in sorted(_STORAGE_CLASSES.items())]
    else:
        out = sorted({str(v) for v in _STORAGE_CLASSES.values()})
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


def cmd_propose(args) -> int:
    ae = make_ae(args)
    ae.add_requested_context(args.propose_only, args.ts or DEFAULT_TS)
    assoc = ae.associate(args.host, args.port, ae_title=args.aec)
    if assoc.is_rejected:
        emit({"rejected": rejection(assoc)})
        return 1
    contexts = list(assoc.accepted_contexts) + list(assoc.rejected_contexts)
    cx = next((c for c in contexts if c.abstract_syntax == args.propose_only), None)
    if cx is None:
        emit({"accepted": False, "result": None,
              "error": "association aborted or peer unreachable before negotiation"})
        if assoc.is_established:
            assoc.release()
        return 2
    res = {
        "accepted": cx.result == 0,
        "result": cx.result,
        "transfer_syntax": str(cx.transfer_syntax[0]) if cx.result == 0 and cx.transfer_syntax else None,
    }
    emit(res)
    if assoc.is_established:
        assoc.release()
    return 0


def cmd_send(args) -> int:
    files = []
    for p in args.files:
        try:
            meta = read_file_meta_info(p)
            files.append((p, str(meta.MediaStorageSOPClassUID), str(meta.TransferSyntaxUID), None))
        except Exception as e:  # unreadable meta: report it, send the rest
            files.append((p, None, None, f"cannot read file meta: {e}"))
    pairs = []
    for _, sop, ts, err in files:
        if err is None and (sop, ts) not in pairs:
            pairs.append((sop, ts))
    if len(pairs) > 128:
        emit({"error": f"{len(pairs)} distinct (SOP class, TS) pairs: more than 128 contexts"})
        return 2

    ae = make_ae(args)
    for sop, ts in pairs:
        ae.add_requested_context(sop, [ts])
    assoc = ae.associate(args.host, args.port, ae_title=args.aec, max_pdu=args.max_pdu)
    if assoc.is_rejected:
        emit({"rejected": rejection(assoc)})
        return 1
    # Context results by (SOP class, TS). When the peer accepted the association
    # but none of the contexts, pynetdicom aborts it at once; that still counts
    # as accepted here (each file then reports its context's rejection).
    if not assoc.is_established and not assoc.rejected_contexts:
        emit({"error": "association not established (peer unreachable or aborted)"})
        return 2
    accepted = {(str(c.abstract_syntax), str(c.transfer_syntax[0]))
                for c in assoc.accepted_contexts}
    by_class = {}
    for c in assoc.rejected_contexts:
        by_class.setdefault(str(c.abstract_syntax), c.result)
    for path, sop, ts, err in files:
        if err is not None:
            emit({"path": path, "status": None, "error": err})
            continue
        if (sop, ts) not in accepted:
            emit({"path": path, "status": None, "context_result": by_class.get(sop),
                  "error": f"no accepted presentation context for {sop} / {ts}"})
            continue
        if not assoc.is_established:
            emit({"path": path, "status": None, "error": "association no longer established"})
            continue
        try:
            status = assoc.send_c_store(Path(path))
        except Exception as e:
            emit({"path": path, "status": None, "error": f"{type(e).__name__}: {e}"})
            continue
        if status is not None and "Status" in status:
            emit({"path": path, "status": int(status.Status)})
        else:
            emit({"path": path, "status": None,
                  "error": "no valid C-STORE response (timeout, abort or invalid response)"})
    if assoc.is_established:
        assoc.release()
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int)
    ap.add_argument("--aet", default="PYNSEND")
    ap.add_argument("--aec", default="ANY-SCP")
    ap.add_argument("--ts-exact", action="store_true",
                    help="propose only each file's own transfer syntax (the default)")
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--max-pdu", type=int, default=16382)
    ap.add_argument("--propose-only", metavar="SOPCLASS_UID")
    ap.add_argument("--ts", action="append", metavar="UID",
                    help="with --propose-only: transfer syntax to propose (repeatable)")
    ap.add_argument("--list-storage-classes", action="store_true")
    ap.add_argument("--with-names", action="store_true")
    ap.add_argument("files", nargs="*")
    args = ap.parse_args(argv)

    if args.list_storage_classes:
        return cmd_list(args)
    if args.port is None:
        ap.error("--port is required")
    if args.propose_only:
        return cmd_propose(args)
    if not args.files:
        ap.error("no files given")
    return cmd_send(args)


if __name__ == "__main__":
    sys.exit(main())
