# TFTP tests and bench: the real TFTP clients the tests drive,
# Debian's tftpd-hpa to compare against (its postinst starts no daemon here;
# nothing relies on port 69), the full lossy matrix and the UDP bench.
#   make test-tftp-lossy   atftp through the lossy relay, 1 KB..100 MB, every
#                          blksize and windowsize 1/16 (test/python/test_tftp_lossy.py)
#   make bench-udp         100 MB RRQ/WRQ, ours vs tftpd-hpa, 10 alternating
#                          runs per cell (median, spread) and the fsync line,
#                          into docs/PERFORMANCE.md (bench/udp.sh; about half
#                          an hour; BENCH_BYTES=20000000 takes ~4 minutes)
DEB_PACKAGES += tftp-hpa atftp tftpd-hpa curl

.PHONY: test-tftp-lossy bench-udp
test-tftp-lossy: $(BIN)/fileserver
	TFTP_LOSSY=1 FSRV_BIN=$(abspath $(BIN)) python3 -m unittest discover -s test/python -p "test_tftp_lossy.py" -v

bench-udp: $(BIN)/fileserver
	FSRV_BIN=$(abspath $(BIN)) bench/udp.sh --write-doc
