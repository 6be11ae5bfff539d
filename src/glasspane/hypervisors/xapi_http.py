"""XAPI's HTTP handlers (/import, /import_raw_vdi, /export, /export_raw_vdi) spoken as XAPI
serves them, which is not plain HTTP:

- an import handler answers *before* it reads the body (import.ml, import_raw_vdi.ml send
  their 200, or a 302, first), so the client reads the status line after the request's headers
  and sends the body only on a 200, as XenCenter's HTTP.PUT does; what happened to the body
  is known only from the XAPI task;
- every handler may answer 302 with the address of the pool member that can see the SR
  (importexport.ml, return_302_redirect): the same path and query on that host, whose
  certificate is its own, not the master's;
- exports carry no Content-Length and a failure mid-stream just closes the connection
  (export.ml, export_raw_vdi.ml): the end of the data says nothing; the caller checks the task
  and what arrived.
"""

from __future__ import annotations

import hashlib
import http.client
import socket
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import SplitResult, urljoin, urlsplit

MAX_REDIRECTS = 3
BLOCK = 1 << 20


@dataclass(frozen=True)
class Peer:
    """How to trust one pool host: a TLS context, and the SHA-256 fingerprint its certificate
    must have when XAPI told us which (pinned per host), or None to rely on the context."""

    context: ssl.SSLContext | None
    fingerprint: str | None = None


class HttpFailure(Exception):
    """The handler refused (`status`) or the connection broke (`status` 0)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


class UntrustedPeer(Exception):
    """A redirect led to a host whose certificate is not the one trusted for it."""


Verify = Callable[[str], Peer]  # host[:port] (as in a URL) -> how to trust it


def _normal(fingerprint: str) -> str:
    return fingerprint.replace(":", "").lower()


def _connect(url: SplitResult, verify: Verify, timeout: float) -> socket.socket:
    host = url.hostname or ""
    port = url.port or (443 if url.scheme == "https" else 80)
    # Asked before connecting: the answer may take a call to XAPI.
    peer = verify(url.netloc) if url.scheme == "https" else None
    raw = socket.create_connection((host, port), timeout=timeout)
    if peer is None:
        return raw
    assert peer.context is not None
    try:
        sock = peer.context.wrap_socket(raw, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        raw.close()
        raise UntrustedPeer(f"{host} presented a certificate glasspane does not trust: "
                            f"{exc.verify_message}") from None
    if peer.fingerprint is not None:
        der = sock.getpeercert(binary_form=True) or b""
        if hashlib.sha256(der).hexdigest() != _normal(peer.fingerprint):
            sock.close()
            raise UntrustedPeer(f"{host} presented a certificate other than the one XAPI "
                                "lists for that host")
    return sock


def _request(sock: socket.socket, method: str, url: SplitResult,
             headers: dict[str, str]) -> http.client.HTTPResponse:
    target = url.path + (f"?{url.query}" if url.query else "")
    host = url.netloc.rpartition("@")[2]  # never the user-info: a header is no place for it
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", "Connection: close",
             *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    sock.sendall("\r\n".join(lines).encode())
    answer = http.client.HTTPResponse(sock, method=method)
    answer.begin()
    return answer


def _exchange(url: str, method: str, headers: dict[str, str], verify: Verify,
              timeout: float) -> tuple[socket.socket, http.client.HTTPResponse, str]:
    """Send the request's headers and read the answer's, following 302s to other hosts;
    the connection, the answer (a 2xx) and the URL that gave it."""
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        try:
            sock = _connect(parts, verify, timeout)
        except OSError as exc:
            raise HttpFailure(0, f"cannot reach {parts.hostname}: {exc}") from None
        try:
            answer = _request(sock, method, parts, headers)
        except (OSError, http.client.HTTPException) as exc:
            sock.close()
            raise HttpFailure(0, f"{parts.hostname} broke the connection: {exc}") from None
        if answer.status in (301, 302, 303, 307, 308):
            location = answer.getheader("Location") or ""
            _close(sock, answer)
            if not location:
                raise HttpFailure(answer.status, "a redirect without a Location")
            target = urljoin(url, location)
            if parts.scheme == "https" and urlsplit(target).scheme != "https":
                # The session id travels in the query: never in the clear.
                raise HttpFailure(answer.status, "a redirect from HTTPS to plain HTTP")
            url = target
            continue
        if answer.status >= 300:
            _close(sock, answer)
            raise HttpFailure(answer.status, f"HTTP {answer.status} {answer.reason}")
        return sock, answer, url
    raise HttpFailure(302, f"more than {MAX_REDIRECTS} redirects")


def _close(sock: socket.socket, answer: http.client.HTTPResponse) -> None:
    """Really close: the answer's reader holds the socket open until it is closed too."""
    answer.close()
    sock.close()


def put(url: str, size: int, blocks: Iterable[bytes], progress: Callable[[int], None],
        verify: Verify, timeout: float = 300) -> str:
    """PUT `size` bytes, given as `blocks`, to an import handler; the URL that took them.
    Only the task knows whether XAPI could use them."""
    sock, answer, where = _exchange(url, "PUT", {"Content-Length": str(size),
                                                 "Content-Type": "application/octet-stream"},
                                    verify, timeout)
    try:
        for block in blocks:
            sock.sendall(block)
            progress(len(block))
    except (OSError, http.client.HTTPException) as exc:
        _close(sock, answer)
        raise HttpFailure(0, f"the connection broke: {exc}") from None
    try:
        # XAPI closes once it has taken the body; whatever happens here, the task says
        # how the upload went.
        while answer.read(BLOCK):
            pass
    except (OSError, http.client.HTTPException):
        pass
    finally:
        _close(sock, answer)
    return where


def get(url: str, sink: BinaryIO, progress: Callable[[int], None], verify: Verify,
        timeout: float = 300) -> int:
    """GET an export into `sink`; the bytes received (which may be fewer than XAPI meant to
    send: see the module's note)."""
    sock, answer, _ = _exchange(url, "GET", {}, verify, timeout)
    received = 0
    try:
        while block := answer.read(BLOCK):
            sink.write(block)
            received += len(block)
            progress(len(block))
    except (OSError, http.client.HTTPException) as exc:
        raise HttpFailure(0, f"the connection broke after {received} bytes: {exc}") from None
    finally:
        _close(sock, answer)
    return received


# -- what an export must look like when it is whole ----------------------------------------------
TAR_BLOCK = 512


def xva_is_whole(path: str) -> str | None:
    """None if the XVA at `path` ends as XAPI's exporter ends one (stream_vdi.ml writes every
    disk's last chunk, with its checksum when it writes checksums, then the archive's end);
    otherwise what is missing."""
    chunks: dict[str, list[tuple[int, int]]] = {}
    sizes: dict[str, int] = {}
    with open(path, "rb") as source:
        while True:
            header = source.read(TAR_BLOCK)
            if len(header) < TAR_BLOCK:
                return "the archive stops inside a header"
            if header == bytes(TAR_BLOCK):
                break  # the end-of-archive marker
            name = header[:100].rstrip(b"\0").decode(errors="replace")
            prefix = header[345:500].rstrip(b"\0").decode(errors="replace")
            if prefix:
                name = f"{prefix}/{name}"
            try:
                length = int(header[124:136].rstrip(b"\0 ").decode() or "0", 8)
            except ValueError:
                return f"a damaged header after {source.tell() - TAR_BLOCK} bytes"
            padded = (length + TAR_BLOCK - 1) // TAR_BLOCK * TAR_BLOCK
            start = source.tell()
            if name == "ova.xml":
                sizes = _xva_disk_sizes(source.read(length))
                source.seek(start + padded)
            else:
                source.seek(start + padded)
            if source.tell() > _size(source):
                return f"{name} is cut off"
            disk, _, chunk = name.rpartition("/")
            if chunk.isdigit():
                chunks.setdefault(disk, []).append((int(chunk), length))
    for disk, size in sizes.items():
        if size == 0:
            continue
        last = (size - 1) // BLOCK
        if (last, size - last * BLOCK) not in chunks.get(disk, []):
            return f"disk {disk} lacks its last chunk"
    return None


def _size(source: BinaryIO) -> int:
    here = source.tell()
    end = source.seek(0, 2)
    source.seek(here)
    return end


def _xva_disk_sizes(text: bytes) -> dict[str, int]:
    """The VDIs' ids in the archive and their virtual sizes, from ova.xml."""
    import xmlrpc.client
    header: Any
    try:
        (header,), _ = xmlrpc.client.loads(
            b"<methodResponse><params><param>" + text + b"</param></params></methodResponse>")
    except Exception:  # a damaged header: reported as a missing disk below
        return {"ova.xml": 1}
    return {str(o["id"]): int(o["snapshot"]["virtual_size"]) for o in header.get("objects", [])
            if o.get("class") == "VDI"}


def vhd_is_whole(path: str, virtual_size: int) -> str | None:
    """None if the file at `path` ends in a VHD footer for a disk of `virtual_size` bytes
    (a dynamic VHD repeats its footer as its last 512 bytes); otherwise what is wrong."""
    with open(path, "rb") as source:
        end = source.seek(0, 2)
        if end < TAR_BLOCK:
            return "it is shorter than a VHD footer"
        source.seek(end - TAR_BLOCK)
        footer = source.read(TAR_BLOCK)
    if footer[:8] != b"conectix":
        return "it does not end in a VHD footer"
    current = int.from_bytes(footer[48:56], "big")
    if current != virtual_size:
        return f"its footer gives {current} bytes, the disk has {virtual_size}"
    return None


MAX_HEAD = 16 << 10


def connect(url: str, verify: Verify, timeout: float = 30) -> socket.socket:
    """XAPI's `CONNECT /console?...` (console.ml): the connection once XAPI answered 200, from
    where on it carries the console's own protocol (RFB).  The head is read a byte at a time:
    whatever follows it is the display's, not a buffered reader's."""
    parts = urlsplit(url)
    try:
        sock = _connect(parts, verify, timeout)
    except OSError as exc:
        raise HttpFailure(0, f"cannot reach {parts.hostname}: {exc}") from None
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        sock.sendall(f"CONNECT {target} HTTP/1.0\r\n\r\n".encode())
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            byte = sock.recv(1)
            if not byte or len(head) > MAX_HEAD:
                raise HttpFailure(0, f"{parts.hostname} broke the connection")
            head += byte
    except OSError as exc:
        sock.close()
        raise HttpFailure(0, f"{parts.hostname} broke the connection: {exc}") from None
    except HttpFailure:
        sock.close()
        raise
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    fields = status_line.split(" ", 2)
    if len(fields) < 2 or fields[1] != "200":
        sock.close()
        raise HttpFailure(int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0,
                          f"HTTP {' '.join(fields[1:])[:80]}")
    sock.settimeout(None)  # a console is quiet for as long as its user is
    return sock
