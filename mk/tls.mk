# TLS under any TCP listener (src/reactor/tls.cpp, docs/TLS.md).
#   make certs       a self-signed pair for the demo and the tests:
#                    build/certs/cert.pem + key.pem (ECDSA P-256, SAN
#                    localhost and 127.0.0.1; git-ignored with build/)
#   make test-tls    the TLS suite alone (test/python/test_tls.py, also in
#                    make test) plus the handshake flood at full size
#
# libssl-dev (OpenSSL 3) is in the Makefile's DEB_PACKAGES; openssl (the
# command) makes the certificates and runs s_client in the tests.

DEB_PACKAGES += openssl curl
LDLIBS += -lssl -lcrypto

CERT_DIR := build/certs
CERT := $(CERT_DIR)/cert.pem
CERT_KEY := $(CERT_DIR)/key.pem

.PHONY: certs test-tls
certs: $(CERT)

# Ten years: a demo pair, never a production one.
$(CERT):
	@mkdir -p $(CERT_DIR)
	$(call say,CERT,$@)openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	  -days 3650 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
	  -keyout $(CERT_KEY) -out $(CERT) 2>/dev/null

# The tests use the pair: `make all` (and so `make test`) makes it.
all: certs

test-tls: all
	cd test/python && FSRV_BIN=$(abspath $(BIN)) FSRV_CERTS=$(abspath $(CERT_DIR)) \
	  FSRV_TLS_FLOOD=full python3 -m unittest -v test_tls
