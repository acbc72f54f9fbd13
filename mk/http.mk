# HTTP service (src/services/http, docs/services/http.md): the tools its
# tests and bench drive.
#   make bench-http     ours (process and thread mode) vs Debian's nginx on
#                       the same files: wrk in alternating rounds (median
#                       req/s, p99, ratio), ab, curl downloads and uploads,
#                       dd, peak RSS (a table; about 8 minutes)
#   make bench-idle     memory per idle connection (http and file, both
#                       modes) against nginx, wrk's rate beside (~1 minute)
#   make test-browser   the web UI in Debian's chromium via puppeteer-core
#                       (npm, installed into build/browser/node_modules)
#
# curl: integration tests (chunked -T -, 100-continue, Range); apache2-utils:
# ab in the integration tests and the bench; nginx (Debian's nginx-core has
# the WebDAV module for PUT) and wrk: the bench only.

DEB_PACKAGES += curl apache2-utils nginx wrk

.PHONY: bench-http bench-idle

bench-http: $(BIN)/fileserver certs
	bench/http.sh $(abspath $(BIN))
	bench/https.sh $(abspath $(BIN)) $(CERT_DIR)

bench-idle: $(BIN)/fileserver
	python3 bench/idle.py $(abspath $(BIN))

# ---- make test-browser ------------------------------------------------
# Kept out of `make deps`/`make test`: chromium is a large download and the
# run takes a browser start; .ci/run calls `make test-browser` itself.
# puppeteer-core is pinned (npm registry) and installed into a local
# node_modules under the build folder; it downloads no browser, it drives
# Debian's /usr/bin/chromium.
BROWSER_PACKAGES := chromium nodejs
PUPPETEER_VERSION ?= 25.16.0
BROWSER_DIR := $(BUILD)/browser
PUPPETEER := $(BROWSER_DIR)/node_modules/puppeteer-core/package.json

.PHONY: test-browser browser-deps

browser-deps:
	@missing=""; for p in $(BROWSER_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(PUPPETEER): mk/http.mk
	@mkdir -p $(BROWSER_DIR)
	cd $(BROWSER_DIR) && npm install --no-audit --no-fund --no-save --loglevel=error \
	  --prefix . puppeteer-core@$(PUPPETEER_VERSION)
	@touch $@

test-browser: browser-deps $(BIN)/fileserver $(PUPPETEER) certs
	FSRV_BIN=$(abspath $(BIN)) SHOT_DIR=$(abspath $(BROWSER_DIR)) FSRV_CERTS=$(abspath $(CERT_DIR)) \
	  NODE_PATH=$(abspath $(BROWSER_DIR))/node_modules node test/browser/http_ui.cjs
