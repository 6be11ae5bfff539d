"""Hypervisor URIs: which ones glasspane registers, and how one is shown.

libvirt's remote driver takes orders from the URI itself: the `ext` transport and
`command=` run a program on this machine, `netcat=` one on the host, `socket=` connects to
any local socket, `keyfile=`, `pkipath=` and `known_hosts=` read (libssh: write) files here,
`no_verify=` turns certificate checks off.  A host registered through the API would do all
that with the server's privileges, so only the forms a real host needs are accepted:
qemu:///system (or qemu+unix:///system) here, qemu+ssh://USER@HOST[:PORT]/system and
qemu+tls://HOST[:PORT]/system remotely, /session instead of /system, and the two parameters
that only choose between libvirt's own helpers on the host (`mode=`, `proxy=`).

A password in a URI (user:password@) is refused at registration too, for libvirt and XenAPI
alike (XAPI takes it at login, and it is kept apart from the registry); one registered
before is never shown to anyone, and the query (paths of this server's files, say) is shown
to admins only.  Not a parser of every URI: the checks work on the raw text, as libvirt
will see it."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote

from glasspane.errors import UsageError

SHAPES = "qemu:///system, qemu+ssh://USER@HOST[:PORT]/system or qemu+tls://HOST[:PORT]/system"
LOCAL_SCHEMES = ("qemu", "qemu+unix")
REMOTE_SCHEMES = ("qemu+ssh", "qemu+tls")
PATHS = ("/system", "/session")
# The parameters accepted, and their values: each picks one of libvirt's own helpers.
PARAMS = {"mode": ("auto", "legacy", "direct"), "proxy": ("auto", "native", "netcat")}
# Why the well-known others are refused (any parameter not in PARAMS is).
PARAM_RISKS = {
    "command": "runs a program of the URI's choosing on this server",
    "netcat": "runs a program of the URI's choosing on the host",
    "socket": "connects to a socket path of the URI's choosing",
    "keyfile": "reads a file of this server's",
    "pkipath": "reads certificates and keys from a directory of this server's",
    "known_hosts": "reads and writes a file of this server's",
    "known_hosts_verify": "changes how the host's SSH key is checked",
    "sshauth": "changes how SSH authenticates",
    "no_verify": "turns off the check of the host's certificate",
    "no_tty": "changes how SSH asks for passwords",
    "tls_priority": "changes the TLS ciphers",
    "name": "names another URI for the host's libvirtd to open",
}
TRANSPORT_RISKS = {
    "ext": "the ext transport runs a program (command=) on this server",
    "tcp": "the tcp transport is neither encrypted nor authenticated",
    "libssh": "use qemu+ssh (libssh reads and writes known_hosts files on this server)",
    "libssh2": "use qemu+ssh (libssh2 reads and writes known_hosts files on this server)",
}
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])$")
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$")
_PRINTABLE = re.compile(r"^[\x21-\x7e]+$")  # no spaces or controls: parsers differ on them


def check_uri(uri: str, driver: str) -> None:
    """Raise UsageError unless glasspane would register a host of `driver` at `uri`."""
    if driver == "libvirt":
        check_libvirt_uri(uri)
    elif driver == "xenapi":
        check_xenapi_uri(uri)


def check_libvirt_uri(uri: str) -> None:
    """Raise UsageError naming the part of `uri` that glasspane does not accept."""
    if not _PRINTABLE.match(uri):
        _refuse(uri, "it has spaces or control characters")
    scheme, sep, rest = uri.partition("://")
    if not sep:
        _refuse(uri, "it is not a URI")
    if "#" in rest:
        _refuse(uri, "it has a fragment (#...)")
    driver, _, transport = scheme.partition("+")
    if transport in TRANSPORT_RISKS:
        _refuse(uri, TRANSPORT_RISKS[transport])
    if scheme not in LOCAL_SCHEMES + REMOTE_SCHEMES:
        what = f"transport {transport!r}" if driver == "qemu" else f"driver {driver!r}"
        _refuse(uri, f"glasspane does not use the {what}")
    authority, path, query = _parts(rest)
    if scheme in LOCAL_SCHEMES and authority:
        _refuse(uri, f"{scheme}:// names no host (a remote one: qemu+ssh://USER@{authority}"
                     "/system or qemu+tls://HOST/system)")
    if scheme in REMOTE_SCHEMES:
        _check_authority(uri, authority)
    if path not in PATHS:
        _refuse(uri, f"its path {path or '(none)'!r} is not /system or /session")
    _check_query(uri, query)


def check_xenapi_uri(uri: str) -> None:
    if not _PRINTABLE.match(uri) or not uri.startswith(("https://", "http://")):
        raise UsageError(f"{redacted(uri, query=False)!r} is not an XAPI address",
                         hint="https://POOL-MASTER (or http:// on a trusted network)")
    if password_of(uri):
        # XAPI logs in with login_with_password; in the URL it would be stored unencrypted.
        raise UsageError(f"XAPI address {redacted(uri, query=True)!r} refused: it carries a "
                         "password", hint="give it as the password (--password-file), which "
                                          "is kept apart, encrypted")


def _refuse(uri: str, why: str) -> None:
    raise UsageError(f"libvirt URI {redacted(uri, query=True)!r} refused: {why}",
                     hint=f"glasspane registers {SHAPES}")


def _parts(rest: str) -> tuple[str, str, str]:
    """The authority, path and query of what follows `scheme://`."""
    head, _, query = rest.partition("?")
    authority, slash, path = head.partition("/")
    return authority, slash + path, query


def _check_authority(uri: str, authority: str) -> None:
    userinfo, at, hostport = authority.rpartition("@")
    if at and ":" in userinfo:
        _refuse(uri, "it carries a password (libvirt takes none: SSH logs in with "
                     "glasspane's key or the agent's, TLS with certificates)")
    if at and not _USER.match(userinfo):
        _refuse(uri, f"the user name {userinfo!r} is not a plain user name")
    host, port = hostport, ""
    if ":" in hostport and not hostport.endswith("]"):
        host, _, port = hostport.rpartition(":")
    if not host:
        _refuse(uri, "it names no host")
    if not _HOST.match(host):
        _refuse(uri, f"the host {host!r} is not a host name or address")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        _refuse(uri, f"the port {port!r} is not a port number")


def _check_query(uri: str, query: str) -> None:
    if not query:
        return
    # libvirt also splits parameters at ';': a value holding one is not among the allowed.
    for raw_name, value in parse_qsl(query, keep_blank_values=True):
        name = unquote(raw_name)
        if name in PARAMS and value in PARAMS[name]:
            continue
        if name in PARAMS:
            _refuse(uri, f"{name}={value!r} is not one of {', '.join(PARAMS[name])}")
        _refuse(uri, f"the parameter {name}= "
                     + PARAM_RISKS.get(name, "is not one glasspane accepts"))


def redacted(uri: str, *, query: bool) -> str:
    """`uri` with any password replaced by ***; the query and fragment too unless `query`."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return uri if query else uri.partition("?")[0]
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    userinfo, at, hostport = authority.rpartition("@")
    if at and ":" in userinfo:
        authority = f"{userinfo.partition(':')[0]}:***@{hostport}"
    if not query:
        path = re.split(r"[?#]", tail, maxsplit=1)[0]
        tail = path + ("?***" if len(path) < len(tail) else "")
    return f"{scheme}://{authority}{tail}"


def password_of(uri: str) -> str:
    """The password in `uri`'s user-info ('' when it has none)."""
    _, sep, rest = uri.partition("://")
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0] if sep else ""
    userinfo, at, _ = authority.rpartition("@")
    return userinfo.partition(":")[2] if at else ""


def without_secrets(text: str, uri: str) -> str:
    """`text` (an error message, say) with `uri`'s password and query left out, whether it
    quotes the URI whole or in part (xmlrpc's errors quote user:password@host/path?query)."""
    text = text.replace(uri, redacted(uri, query=False))
    query = re.split(r"#", uri.partition("?")[2], maxsplit=1)[0]
    if query:
        text = text.replace(f"?{query}", "?***")
    password = password_of(uri)
    for secret in {password, unquote(password)} - {""}:
        text = text.replace(secret, "***")
    return text
