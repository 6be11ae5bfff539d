"""Derive tests/xapi/datamodel.json, the loopback XAPI's fixture, from XAPI's published
datamodel (xapi-project/xen-api doc/data/xenapi.json; a copy is in ../shared/reference/xenapi/
on the development machines): for the classes the loopback XAPI serves, each field's name, type
and qualifier and each message's parameter types.  Nothing else is kept.

    .venv/bin/python tests/xapi/make_datamodel.py [path/to/xenapi.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

CLASSES = ("session", "event", "task", "pool", "host", "host_metrics", "SR", "VDI", "VBD",
           "network", "VIF", "VM", "VM_guest_metrics", "PBD", "Certificate", "console")
SOURCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "xenapi" / "xenapi.json"
TARGET = Path(__file__).with_name("datamodel.json")


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else SOURCE
    model = {}
    for klass in json.loads(source.read_text()):
        if klass["name"] not in CLASSES:
            continue
        model[klass["name"]] = {
            "fields": [[f["name"], f["type"], f.get("qualifier", "")] for f in klass["fields"]],
            "messages": {m["name"]: [p["type"] for p in m["params"]]
                         for m in klass["messages"]}}
    TARGET.write_text(json.dumps(model, indent=0, sort_keys=True) + "\n")
    print(f"wrote {TARGET} ({TARGET.stat().st_size} bytes, {len(model)} classes)")


if __name__ == "__main__":
    main()
