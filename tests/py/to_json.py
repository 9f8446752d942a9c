"""Print pydicom's DICOM JSON (PS3.18 Annex F) of each file given on the command line.

One line per file, in the order given: the JSON object of the data set, produced by
``Dataset.to_json_dict(bulk_data_threshold=1024, bulk_data_element_handler=lambda e: "BULK")``,
or ``{"__error__": "<message>"}`` when pydicom cannot read or serialize the file.
The file meta group is not part of the data set and is not printed.

Used by crates/dxhub-dicom/tests/json_vs_pydicom.rs as the reference implementation.
"""

import json
import sys
import warnings

import pydicom


def main(paths):
    warnings.simplefilter("ignore")
    for path in paths:
        try:
            ds = pydicom.dcmread(path, force=True)
            out = ds.to_json_dict(
                bulk_data_threshold=1024,
                bulk_data_element_handler=lambda e: "BULK",
            )
        except Exception as exc:  # reported to the Rust test, which decides
            out = {"__error__": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
