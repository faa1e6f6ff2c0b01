"""The operator's service: participant registry and credentials, catalog, agreements, ledger."""
