"""cloud-init NoCloud seeds: an ISO 9660 volume labelled `cidata` holding meta-data,
user-data and, when given, network-config.  Built in pure Python (pycdlib): no genisoimage.

The SSH key goes in meta-data (`public-keys`), so it reaches the image's default user whatever
user-data the caller supplies.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import pycdlib

DEFAULT_USER_DATA = "#cloud-config\n{}\n"


@dataclass
class Seed:
    instance_id: str
    hostname: str
    ssh_keys: list[str] = field(default_factory=list)
    user_data: str | None = None
    network_config: str | None = None

    def meta_data(self) -> str:
        # JSON is YAML: no YAML emitter needed, and no quoting surprises.
        return json.dumps({"instance-id": self.instance_id, "local-hostname": self.hostname,
                           "public-keys": self.ssh_keys}, indent=2) + "\n"


def write_seed_iso(seed: Seed, path: Path) -> None:
    files = {"meta-data": seed.meta_data(),
             "user-data": seed.user_data or DEFAULT_USER_DATA}
    if seed.network_config:
        files["network-config"] = seed.network_config
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident="cidata")
    for index, (name, text) in enumerate(sorted(files.items())):
        data = text.encode()
        # ISO 9660 names are 8.3 upper case; cloud-init reads the Joliet/Rock Ridge names.
        iso.add_fp(io.BytesIO(data), len(data), f"/FILE{index};1", rr_name=name,
                   joliet_path=f"/{name}")
    iso.write(str(path))
    iso.close()
