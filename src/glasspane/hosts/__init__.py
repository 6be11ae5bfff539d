"""The hosts glasspane manages: their registry and the service functions the CLI and the API
share."""
