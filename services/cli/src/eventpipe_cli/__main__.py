"""`python -m eventpipe_cli`: the same command as `eventpipe` (what `up --detach` starts in the background)."""

from eventpipe_cli.main import app

app(prog_name="eventpipe")
