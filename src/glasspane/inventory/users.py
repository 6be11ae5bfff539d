"""Users, roles and API tokens.

Passwords are hashed with Argon2id (memory-hard); tokens are 256-bit random secrets shown once
and stored as SHA-256 digests (a secret that long needs no slow hash, and lookups stay fast).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from glasspane.errors import NotFound, UsageError
from glasspane.inventory.models import ApiToken, User, utcnow
from glasspane.settings import Settings

ROLES = ("viewer", "operator", "admin")  # each can do what the ones before it can
MIN_PASSWORD = 8
TOKEN_PREFIX = "gp_"  # noqa: S105 - a label, not a secret
SESSION_HOURS = 12
BOOTSTRAP_USER = "admin"  # made by `serve --bootstrap-admin`, its password in a file
_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
_hasher = PasswordHasher()
# Verified when the user does not exist, so that a login's time does not say whether it does.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


def role_allows(role: str, needed: str) -> bool:
    return ROLES.index(role) >= ROLES.index(needed)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UsageError(f"the password must have at least {MIN_PASSWORD} characters")


def add_user(session: Session, name: str, password: str, role: str) -> User:
    if not _NAME.match(name):
        raise UsageError(f"invalid user name {name!r}",
                         hint="lowercase letters, digits, '.', '_' and '-'")
    if role not in ROLES:
        raise UsageError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
    _check_password(password)
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise UsageError(f"a user named {name!r} already exists")
    user = User(name=name, password_hash=_hasher.hash(password), role=role)
    session.add(user)
    session.flush()
    return user


def get_user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"no user named {name!r}")
    return user


def authenticate(session: Session, name: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.name == name))
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or user.disabled:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def set_password(session: Session, user: User, password: str, settings: Settings,
                 keep: str | None = None) -> int:
    """Give `user` a new password and revoke all its tokens and sessions but the one whose
    secret is `keep` (the caller's own, when users change their own password); the number
    revoked.  The first change of the bootstrap admin's password removes the file its first
    password was written to."""
    _check_password(password)
    user.password_hash = _hasher.hash(password)
    kept = token_digest(keep) if keep else None
    revoked = 0
    for token in session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)):
        if token.token_hash != kept:
            session.delete(token)
            revoked += 1
    if user.name == BOOTSTRAP_USER:
        bootstrap_password_file(settings).unlink(missing_ok=True)
    return revoked


def bootstrap_password_file(settings: Settings) -> Path:
    return settings.config_dir / "admin-password"


def token_digest(secret: str) -> str:
    """What is stored of a token (and what caches key it by): its SHA-256."""
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_token(session: Session, user: User, name: str,
                lifetime: dt.timedelta | None = None) -> str:
    """A new token for `user`; the secret is returned here and never again."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, name=name, token_hash=token_digest(secret),
                         prefix=secret[:10],
                         expires_at=utcnow() + lifetime if lifetime else None))
    session.flush()
    return secret


def user_for_token(session: Session, secret: str) -> User | None:
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(secret)))
    if token is None:
        return None
    now = utcnow()
    expires = token.expires_at
    if expires is not None and expires.replace(tzinfo=expires.tzinfo or dt.UTC) <= now:
        return None
    if token.user.disabled:
        return None
    last = token.last_used_at
    if last is None or now - last.replace(tzinfo=last.tzinfo or dt.UTC) > dt.timedelta(minutes=1):
        token.last_used_at = now  # at most once a minute: reads stay reads
    return token.user


def revoke_token(session: Session, secret: str) -> None:
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(secret)))
    if token is not None:
        session.delete(token)
