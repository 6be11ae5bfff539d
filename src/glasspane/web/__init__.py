"""The pane: one static page (HTML, CSS, plain JavaScript; nothing fetched from elsewhere)."""
