"""The command line's groups and commands, one module each; tds.cli puts them together."""
