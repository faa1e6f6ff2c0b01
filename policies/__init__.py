"""The TDS policy language (an ODRL 2.2 subset) and its evaluator, and space-wide rules.

Pure: no I/O, no Flask, no database. Everything here is a function of its arguments.
"""
