# Cluster mode on one machine (docs/CLUSTER.md): HAProxy in front, a
# GlusterFS replica-2 volume as the shared root, PostgreSQL for chat, three
# fsrv nodes in process mode, all inside a namespace tools/cluster.sh makes.
#   make cluster-up     start the stack (prints the frontends, the nodes and
#                       how to enter the namespace); CLUSTER_DIR=... to choose
#                       where its state lives (default /tmp/fsrv-cluster)
#   make cluster-down   stop it and remove everything it made
#   make test-cluster   failover scenarios through HAProxy (own stack, < 5 min)
#   make bench-cluster  GET/UPLOAD and chat through HAProxy, 1 and 3 nodes vs direct
#
# The engines are Debian packages, installed by the cluster targets only
# (`make test` does not need them): glusterd and its FUSE client, HAProxy
# 2.6, and util-linux's unshare/nsenter. PostgreSQL comes from mk/chat.mk.

CLUSTER_DEB_PACKAGES := glusterfs-server glusterfs-client haproxy util-linux iproute2 \
  postgresql fuse3 python3 curl bc procps
CLUSTER_DIR ?= /tmp/fsrv-cluster

.PHONY: cluster-deps cluster-up cluster-down test-cluster bench-cluster

cluster-deps:
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(CLUSTER_DEB_PACKAGES)"

cluster-up: cluster-deps $(BIN)/fileserver
	tools/cluster.sh up --dir $(CLUSTER_DIR) --bin $(abspath $(BIN))

cluster-down:
	tools/cluster.sh down --dir $(CLUSTER_DIR)

test-cluster: cluster-deps $(BIN)/fileserver $(BIN)/filecli
	FSRV_BIN=$(abspath $(BIN)) python3 test/cluster/test_cluster.py

bench-cluster: cluster-deps $(BIN)/fileserver $(BIN)/filecli
	FSRV_BIN=$(abspath $(BIN)) python3 test/cluster/bench_cluster.py
