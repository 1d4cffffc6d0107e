from eventpipe_quality.cli import main

main()
