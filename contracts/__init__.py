"""Signed documents and their rules: canonical JSON, keys and signatures, HTTP message
signatures, offers, agreements and their state machine, usage records.

Pure apart from reading and writing key files (:mod:`contracts.keys`).
"""
