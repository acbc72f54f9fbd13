# HTTP service (src/services/http, docs/services/http.md): the tools its
# tests and bench drive.
#   make bench-http     ours vs Debian's nginx on the same files: wrk, ab,
#                       curl downloads and uploads, dd, peak RSS (a table)
#   make test-browser   the web UI in Debian's chromium via puppeteer-core
#                       (npm, installed into build/browser/node_modules)
#
# curl: integration tests (chunked -T -, 100-continue, Range); apache2-utils:
# ab in the integration tests and the bench; nginx (Debian's nginx-core has
# the WebDAV module for PUT) and wrk: the bench only.

DEB_PACKAGES += curl apache2-utils nginx wrk

.PHONY: bench-http

bench-http: $(BIN)/fileserver
	tools/bench-http.sh $(abspath $(BIN))
