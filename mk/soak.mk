# make soak: the bounded soak test (tools/soak.py; docs/RELIABILITY.md).
#   make soak [SOAK_SECONDS=600] [SOAK_CLIENTS=200]
# Process mode with 4 workers, a worker SIGKILLed every 30 s, hostile
# clients beside 200 honest ones; writes its table into docs/RELIABILITY.md.
SOAK_SECONDS ?= 600
SOAK_CLIENTS ?= 200

.PHONY: soak
soak: $(BIN)/fileserver
	FSRV_BIN=$(abspath $(BIN)) SOAK_SECONDS=$(SOAK_SECONDS) SOAK_CLIENTS=$(SOAK_CLIENTS) \
	  python3 tools/soak.py --write-doc
