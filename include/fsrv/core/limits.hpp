#pragma once
// Hard limits and sizes of the server, as named constants with the reason
// beside each (Redis habit). Options that override one say so.

#include <cstddef>
#include <cstdint>

namespace fsrv::limits {

/// Longest request line without payload (LIST, GET name, ...). A name is at
/// most 255 bytes, so 8 KiB is generous; anything longer is garbage or an
/// attack and gets an ERROR without growing a buffer.
inline constexpr size_t kMaxLine = 8 * 1024;

/// The line buffer holds pipelined requests and the first bytes of an upload
/// payload; 64 KiB is one typical socket read.
inline constexpr size_t kLineBuffer = 64 * 1024;

/// File bytes read and encoded per GET chunk: 1 MiB rounded down to a
/// multiple of 3 so every chunk but the last encodes without padding
/// (1 MiB reads sit in the 1-4 MiB range that amortises syscalls and pool
/// hand-offs while 50 connections x 2 chunks stay under 256 MiB).
inline constexpr size_t kGetChunk = (1024 * 1024 / 3) * 3;

/// File bytes one pread-encode-send step of a clear-text base64 GET takes
/// (Connection::send_file with a transform): 96 KiB, a multiple of 3, is
/// 128 KiB encoded. The job keeps one encoded buffer of that size, which a
/// client that stops reading holds for as long as it stalls, so it stays
/// small (test/hostile/test_get_stalled.py: under 512 KiB of server memory
/// per stalled GET: 361 and 443 KiB measured with 192 KiB steps, 1.6 MiB
/// with 1 MiB); the pread, encode and send of a step stay in a core's L2,
/// and the syscalls per 100 MB (about 1,040 sends) cost little.
inline constexpr size_t kGetSendChunk = 96 * 1024;
static_assert(kGetSendChunk % 3 == 0);

/// Unsent bytes a TCP connection may keep in its kernel send queue
/// (TCP_NOTSENT_LOWAT, set on every listening socket; Linux copies it to
/// each accepted one). Past it send(2) takes nothing more and poll reports
/// the socket writable again only below it (Linux
/// Documentation/networking/ip-sysctl.rst, tcp_notsent_lowat). It does not
/// limit what is in flight, so the window still grows on a long path.
/// Without it a client that stops reading made the kernel queue up to
/// tcp_wmem's maximum per connection: 100 stalled GETs held 4,228 KiB of
/// TCP memory each, 269 KiB with 128 KiB here; at the per-address cap
/// (512) the old figure is 2.1 GB, past this machine's tcp_mem pressure
/// mark (1.57 GB), where the kernel shrinks every connection's buffers.
inline constexpr int kUnsentBytesPerConnection = 128 * 1024;

/// Encoded GET chunks alive per connection (one being encoded, one being
/// written): the write queue is bounded by construction.
inline constexpr int kGetChunksInFlight = 2;

/// Base64 characters of an UPLOAD payload gathered before one decode+pwrite
/// work item; two such buffers per uploading connection (one filling from
/// the socket, one decoding), so reading pauses when the disk lags.
inline constexpr size_t kUploadChunk = 1024 * 1024;

/// Default --max-upload: 4 GiB of decoded file bytes.
inline constexpr uint64_t kDefaultMaxUpload = 4ull << 30;

/// Default --idle-timeout in seconds: a client silent this long (no byte
/// read and no write progress) is sent an ERROR and closed.
inline constexpr double kDefaultIdleTimeoutS = 60.0;

/// Default --max-conns: beyond it a new client gets ERROR "server busy".
inline constexpr int kDefaultMaxConns = 1024;

/// Default --max-conns-per-address: one source address may hold half the
/// default table, so one host alone never fills it; a NAT or a test
/// running every client on 127.0.0.1 still has room for hundreds.
inline constexpr int kDefaultMaxConnsPerAddress = 512;

/// Default --legacy-idle-ms: the course's original client sends "LIST" or
/// "GET name" with no terminator and waits; after this much silence a
/// complete non-UPLOAD command is processed anyway.
inline constexpr int kDefaultLegacyIdleMs = 200;

/// Default --request-timeout in seconds: a request line must be complete
/// this long after its first byte (nginx's client_header_timeout), so a
/// client sending one byte a second cannot hold a slot forever.
inline constexpr double kDefaultRequestTimeoutS = 30.0;

/// Default --min-rate in bytes per second over --min-rate-window seconds:
/// a payload or reply moving slower than this is cut off (Apache's
/// mod_reqtimeout MinRate). 1 KiB/s over 30 s is far below any real client.
inline constexpr double kDefaultMinRate = 1024.0;
inline constexpr double kDefaultMinRateWindowS = 30.0;

/// Default grace period in seconds for in-flight transfers at shutdown.
inline constexpr double kDefaultGraceS = 10.0;

/// File descriptors kept free for everything that is not a client socket
/// (listeners, channels, signalfd, epoll, stdio, refusing a client): the
/// connection cap derived from RLIMIT_NOFILE leaves this many unused.
inline constexpr int kReservedFds = 64;

/// Descriptors one connection may hold at once: its socket, the file it is
/// sending or the temporary file it is writing, and send_file's dup of the
/// socket. Used to derive the connection cap from RLIMIT_NOFILE.
inline constexpr int kFdsPerConnection = 3;

/// Most event-loop threads thread mode may run (--loops). A loop beyond
/// the cores only adds wake-ups on the shared listening sockets; the cap
/// bounds the threads (and per-loop services) a typo can start.
inline constexpr int kMaxLoops = 64;

/// Longest file name in bytes (NAME_MAX on Linux).
inline constexpr size_t kMaxName = 255;

// Socket buffers: deliberately not set. Linux autotunes TCP buffers up to
// net.ipv4.tcp_wmem/tcp_rmem's maximum (4 MiB / 32 MiB here); an explicit
// SO_SNDBUF turns autotuning off and is capped at net.core.wmem_max. Measured
// with 1 and 4 MiB: no difference beyond noise (docs/PERFORMANCE.md).

}  // namespace fsrv::limits
