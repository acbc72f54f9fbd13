# UDP services: bin/udpsend, the course's tugas 2 sender done in
# C++ (one byte per datagram by default) to demonstrate and test udp-sink.
PROGRAMS += udpsend
udpsend_SRCS := tools/udpsend.cpp
