"""The `glasspane` command tree: `glasspane <noun> <verb>`."""
