"""eventpipe dashboard."""
