# Hostile-client tests: one client (or one address) must not starve the
# others on any service. Each test runs an attack at a size that takes
# seconds against the built server, asserts the other clients are still
# served, and prints the figures it measured ("[hostile] name: k=v ...").
#   make test-hostile   every test/hostile/test_*.py, thread and process modes
.PHONY: test-hostile
test-hostile: $(BIN)/fileserver
	FSRV_BIN=$(abspath $(BIN)) python3 -m unittest discover -s test/hostile -p 'test_*.py' -v
