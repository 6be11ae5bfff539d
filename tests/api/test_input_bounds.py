"""Inputs the database cannot hold are refused as the caller's mistake (a 4xx naming the
input), never carried to the database, where they would end in a 500 or, in the event
stream, in a broken stream after its 200."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.api.conftest import login, serve

API = "/api/v1"


@pytest.mark.parametrize("start", [
    {"params": {"after": str(2**31)}},
    {"params": {"after": "9" * 40}},
    {"headers": {"Last-Event-ID": str(2**63)}},
])
def test_an_event_id_past_what_the_database_holds_is_refused(
        app: FastAPI, start: dict[str, dict[str, str]]) -> None:
    server = serve(app)  # a real server: the old answer was a 200 and a stream cut short
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            vera = login(client, "vera")
            with client.stream("GET", f"{API}/events", params=start.get("params"),
                               headers={**vera, **start.get("headers", {})}) as response:
                assert response.status_code == 422
                response.read()
                assert "less than or equal to" in response.text
    finally:
        server.stop()
