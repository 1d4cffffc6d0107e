"""The eventpipe command line."""
