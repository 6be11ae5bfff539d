"""Containers inside VMs: the Docker Engine API (Docker or Podman) over each VM's kept SSH
connection."""
