"""The composition root: the ``tds`` command line and the demo."""
