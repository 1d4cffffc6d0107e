"""Conventions shared by every eventpipe component (settings, structured logs, errors)."""
