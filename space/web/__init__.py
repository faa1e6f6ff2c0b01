"""The space's HTTP layer: one blueprint per domain (participants, catalog, agreements, ledger,
aggregations, settlement, admin; the console is space.console). Each reads the node's parts
from ``current_app.extensions["tds"]`` (space.web.common); the services below return values or
raise, and only this layer speaks HTTP."""
