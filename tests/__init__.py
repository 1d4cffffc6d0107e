"""The test suites (one folder per package) and their shared helpers (tests/helpers). A package so that
`tests.helpers` resolves to this repository's folder whatever a virtualenv installs."""
