"""Isolated execution of job code: one interface, backends behind it, the vetted operations
and the worker that runs inside the sandbox."""
