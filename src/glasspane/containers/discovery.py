"""Finding the container engine in a VM: which socket (Docker's, rootful or rootless Podman's),
whether the login user may open it or needs `sudo -n`, which relay program the VM has; and
starting the engine's socket unit on demand where systemd has one (Podman's is
socket-activated, and often not listening until someone asks)."""

from __future__ import annotations

from dataclasses import dataclass, field

from glasspane.errors import GuestError
from glasspane.guests.ssh import SshConnection

# Run by `sh` as the login user.  Prints key=value lines.  Docker first: a VM that has both
# runs its applications with Docker.  /run/podman is root's alone, so without sudo the
# rootful socket cannot even be seen.
SCRIPT = r"""
uid=$(id -u)
if [ "$uid" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n";
else SUDO=none; fi
echo "sudo=${SUDO:-root}"
owner() {
  case "$1" in
    /run/podman/podman.sock) echo podman.socket ;;
    /var/run/docker.sock) echo docker.socket docker.service ;;
  esac
}
stale() {  # a socket file left behind by a unit that is stopped
  command -v systemctl >/dev/null 2>&1 || return 1
  for u in $(owner "$1"); do systemctl is-active --quiet "$u" && return 1; done
  for u in $(owner "$1"); do [ -n "$(systemctl is-enabled "$u" 2>/dev/null)" ] && return 0; done
  return 1
}
probe() {
  for s in /var/run/docker.sock /run/podman/podman.sock "/run/user/$uid/podman/podman.sock"; do
    if stale "$s"; then echo "stopped=$s"; continue; fi
    if [ -S "$s" ]; then
      if [ -r "$s" ] && [ -w "$s" ]; then echo "socket=$s"; echo "access=direct"; return 0; fi
      if [ "$SUDO" != none ]; then echo "socket=$s"; echo "access=sudo"; return 0; fi
      echo "denied=$s"
    elif [ "$SUDO" != none ] && $SUDO test -S "$s" 2>/dev/null; then
      echo "socket=$s"; echo "access=sudo"; return 0
    fi
  done
  return 1
}
if ! probe && command -v systemctl >/dev/null 2>&1; then
  for unit in docker.socket docker.service podman.socket; do
    state=$(systemctl is-enabled "$unit" 2>/dev/null) || true
    case "$state" in
      masked|masked-runtime) echo "masked=$unit" ;;
      enabled|disabled|static|indirect|generated|enabled-runtime)
        if [ "$SUDO" = none ]; then echo "cannot-start=$unit"
        elif $SUDO systemctl start "$unit" 2>/dev/null; then
          echo "started=$unit"; probe && break
        else echo "failed=$unit"; fi ;;
    esac
  done
fi
for tool in socat python3 docker podman; do
  command -v "$tool" >/dev/null 2>&1 && echo "has=$tool"
done
exit 0
"""


@dataclass(frozen=True)
class Probe:
    """What the script found, before the engine itself was asked anything."""

    socket: str | None
    sudo: bool
    relay: str | None
    started: list[str] = field(default_factory=list)


def probe_engine(ssh: SshConnection) -> Probe:
    done = ssh.run(["sh", "-c", SCRIPT], timeout=60)
    target = ssh.target
    if done.returncode != 0:
        raise GuestError(f"probing for a container engine failed: "
                         f"{done.stderr.decode(errors='replace').strip()}",
                         host=target.host, vm=target.vm)
    found: dict[str, list[str]] = {}
    for line in done.stdout.decode(errors="replace").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            found.setdefault(key, []).append(value)
    has = found.get("has", [])
    relay = "socat" if "socat" in has else "python3" if "python3" in has else None
    socket = found["socket"][-1] if "socket" in found else None
    if socket is None:
        raise GuestError("no Docker or Podman engine found", host=target.host, vm=target.vm,
                         hint=_why_none(found, target.user))
    if relay is None:
        raise GuestError(f"the engine socket {socket} is there, but neither socat nor python3 "
                         "is, to relay to it", host=target.host, vm=target.vm,
                         hint="install socat in the VM")
    return Probe(socket, found.get("access", ["direct"])[-1] == "sudo", relay,
                 found.get("started", []))


def _why_none(found: dict[str, list[str]], user: str) -> str:
    has = found.get("has", [])
    reasons = []
    if found.get("masked"):
        reasons.append(f"{', '.join(found['masked'])} masked")
    if found.get("denied"):
        reasons.append(f"{user} may not open {', '.join(found['denied'])} and has no "
                       "passwordless sudo")
    if found.get("cannot-start"):
        reasons.append(f"{', '.join(found['cannot-start'])} not started and {user} has no "
                       "passwordless sudo to start it")
    if found.get("failed"):
        reasons.append(f"{', '.join(found['failed'])} failed to start")
    if "docker" not in has and "podman" not in has:
        reasons.append("neither docker nor podman is installed")
    return "; ".join(reasons) or "no engine socket is listening"
