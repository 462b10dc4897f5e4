"""Storage adapters behind the storacle service (warehouse, vault SQLite, vault files)."""
