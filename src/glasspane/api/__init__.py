"""The REST API (FastAPI) under /api/v1, with live events and the pane's page."""
