"""The test suites; a package so every test module has a unique dotted name (tests.<suite>...)."""
