"""What the test suites share besides fixtures: starting real servers (servers.py, kubecluster.py), data builders,
hypothesis strategies and stack drivers, one module per job. Imported as `from tests.helpers.<module> import ...`;
fixtures stay in the conftest.py files."""
