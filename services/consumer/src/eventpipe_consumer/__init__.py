"""eventpipe consumer service."""
