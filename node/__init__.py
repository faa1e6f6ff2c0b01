"""The I/O edge shared by the space and the connectors: problem+json errors, database engines
and migrations, signed HTTP in and out, bearer tokens, serving. Depends on :mod:`contracts`
only; the space and the connectors each build on it and never import each other."""
