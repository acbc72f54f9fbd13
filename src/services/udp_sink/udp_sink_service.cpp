#include "fsrv/services/udp_sink/udp_sink_service.hpp"

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <unordered_map>

#include "fsrv/core/log.hpp"
#include "fsrv/reactor/datagram_peer.hpp"
#include "fsrv/reactor/log_limiter.hpp"
#include "fsrv/services/udp_sink/udp_sink_options.hpp"
#include "fsrv/storage/storage.hpp"
#include "fsrv/transfer/upload_sink.hpp"

namespace fsrv::services::udp_sink {

namespace {

/// Source addresses whose quota window is tracked at once. Each entry is a
/// few dozen bytes; beyond this many (spoofed sources), expired entries are
/// swept, and if none is expired a new address's datagram is dropped, so
/// the table cannot grow with the addresses an attacker makes up.
constexpr size_t kMaxQuotaAddresses = 4096;

/// Files of evicted senders still being committed (fsync, rename) beyond
/// --udp-max-senders: a new sender takes the slot of the one evicted at
/// once, and a flood of new senders is dropped while this many commits run,
/// so open files stay under --udp-max-senders + kMaxCommitting.
constexpr int kMaxCommitting = 8;

/// "20261121T155708.123Z": UTC, millisecond resolution, so two files of
/// one sender a moment apart get different names.
std::string utc_stamp() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  gmtime_r(&ts.tv_sec, &t);
  char text[40];
  snprintf(text, sizeof text, "%04d%02d%02dT%02d%02d%02d.%03dZ", t.tm_year + 1900, t.tm_mon + 1,
           t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, static_cast<int>(ts.tv_nsec / 1000000));
  return text;
}

class UdpSinkService;

/// One sender's file in progress, written through the upload engine
/// (transfer::UploadSink); a datagram its buffers cannot take whole is
/// dropped and counted (UDP cannot slow the sender; a part would corrupt the
/// file). Its DatagramPeer timer is the idle timer; it owns itself.
struct Sender final : reactor::DatagramPeer {
  Sender(UdpSinkService& service, uv_loop_t* loop, const sockaddr& from)
      : DatagramPeer(loop, from), service(service) {}

  UdpSinkService& service;
  std::string name;                            ///< the file it becomes
  std::shared_ptr<transfer::UploadSink> sink;  ///< null once over --max-upload
  uint64_t bytes = 0, datagrams = 0, dropped = 0;
  uint64_t last_ms = 0;  ///< uv_now of the last datagram

 private:
  void on_timer() override;
  void on_released() override { delete this; }
};

/// One source address's use of its quota in the current window.
struct AddressQuota {
  uint64_t window_start_ms = 0;
  int files = 0;
  uint64_t bytes = 0;
};

class UdpSinkService final : public DatagramService {
 public:
  explicit UdpSinkService(Shared& shared)
      : DatagramService(shared, "udp-sink"),
        options_(shared.config->services.get<Options>()),
        datagrams_(counter("datagrams")),
        bytes_(counter("bytes")),
        dropped_(counter("dropped")),
        quota_dropped_(counter("quota_dropped")),
        full_dropped_(counter("senders_full_dropped")),
        readonly_dropped_(counter("readonly_dropped")),
        files_(counter("files/committed")),
        failed_(counter("files/failed")) {}

  void on_start(reactor::DatagramListener&) override {
    if (listeners_++ == 0 && policy().read_only) {
      FSRV_LOG_WARN(
          "udp-sink: read-only listener: every datagram is dropped and counted "
          "(udp-sink/readonly_dropped)");
    }
  }

  void on_datagram(reactor::DatagramListener&, const sockaddr& from,
                   std::span<const char> data) override {
    if (policy().read_only) {  // every datagram would write a file
      count(readonly_dropped_);
      return;
    }
    uint64_t now = uv_now(shared_.loop);
    std::string ip = reactor::address_ip(from);
    std::string key = reactor::address_key(from);
    AddressQuota* quota = quota_of(ip, now);
    if (!quota || quota->bytes + data.size() > options_.address_bytes) {
      drop_over_quota(ip, now, quota ? "bytes" : "address table full");
      return;
    }
    auto it = senders_.find(key);
    if (it == senders_.end()) {
      if (quota->files >= options_.address_files) {
        drop_over_quota(ip, now, "files");
        return;
      }
      // Open files stay within --udp-max-senders (+ kMaxCommitting being
      // committed): the oldest is committed to make room, and while too
      // many commits run a new sender's datagrams are dropped.
      if (!senders_.empty() && senders_.size() >= static_cast<size_t>(options_.max_senders)) {
        finish(std::ranges::min_element(senders_, {}, [](auto& s) { return s.second->last_ms; }));
      }
      if (open_files_ >= options_.max_senders + kMaxCommitting) {
        count(full_dropped_);
        if (full_log_.allow(now)) {
          FSRV_LOG_WARN(
              "udp-sink: %d files open (--udp-max-senders): a datagram from %s dropped "
              "(%llu similar suppressed)",
              open_files_, key.c_str(),
              static_cast<unsigned long long>(full_log_.take_suppressed()));
        }
        return;
      }
      quota->files++;
      it = senders_.emplace(key, open_sender(from)).first;
    }
    quota->bytes += data.size();
    Sender* s = it->second;
    s->last_ms = now;
    s->datagrams++;
    count(datagrams_);
    if (!s->sink || !s->sink->error().ok()) return;  // discarded, or failing
    if (s->bytes + data.size() > shared_.config->max_upload) {
      s->sink->cancel();  // the temporary file goes
      s->sink.reset();
      FSRV_LOG_WARN("udp-sink: %s over --max-upload (%llu bytes): its file is discarded",
                    s->peer_key().c_str(),
                    static_cast<unsigned long long>(shared_.config->max_upload));
      return;
    }
    if (s->sink->room() < data.size()) {
      s->dropped++;
      count(dropped_);
      return;
    }
    s->sink->feed({data.data(), data.size()});
    s->bytes += data.size();
    count(bytes_, data.size());
  }

  void on_stop(reactor::DatagramListener&) override {
    if (--listeners_ > 0) return;
    while (!senders_.empty()) finish(senders_.begin());
  }

  /// A sender's idle timer fired: its file is committed once idle-ms
  /// passed since its last datagram, else the timer waits the rest.
  void idle(Sender& s) {
    const uint64_t now = uv_now(shared_.loop);
    const auto idle = static_cast<uint64_t>(options_.idle_ms);
    if (now - s.last_ms < idle) {
      s.arm_timer(s.last_ms + idle - now);
      return;
    }
    finish(senders_.find(s.peer_key()));
  }

 private:
  /// `ip`'s quota entry, its window restarted if over; null when the
  /// table is full of live windows.
  AddressQuota* quota_of(const std::string& ip, uint64_t now) {
    auto window = static_cast<uint64_t>(options_.address_window_s * 1000.0);
    auto it = quotas_.find(ip);
    if (it == quotas_.end()) {
      if (quotas_.size() >= kMaxQuotaAddresses) {
        std::erase_if(quotas_,
                      [&](const auto& q) { return now - q.second.window_start_ms >= window; });
        if (quotas_.size() >= kMaxQuotaAddresses) return nullptr;
      }
      it = quotas_.emplace(ip, AddressQuota{now, 0, 0}).first;
    }
    if (now - it->second.window_start_ms >= window) it->second = AddressQuota{now, 0, 0};
    return &it->second;
  }

  void drop_over_quota(const std::string& ip, uint64_t now, const char* what) {
    count(quota_dropped_);
    if (!quota_log_.allow(now)) return;
    FSRV_LOG_WARN(
        "udp-sink: %s over its quota (%s: %d files, %llu bytes per %g s): datagrams "
        "dropped (%llu similar suppressed)",
        ip.c_str(), what, options_.address_files,
        static_cast<unsigned long long>(options_.address_bytes), options_.address_window_s,
        static_cast<unsigned long long>(quota_log_.take_suppressed()));
  }

  Sender* open_sender(const sockaddr& from) {
    ++open_files_;
    auto* s = new Sender(*this, shared_.loop, from);  // owns itself until on_released
    s->name = "udp-" + s->peer_ip() + "-" + std::to_string(reactor::address_port(from)) + "-" +
              utc_stamp() + ".bin";
    s->last_ms = uv_now(shared_.loop);
    s->arm_timer(static_cast<uint64_t>(options_.idle_ms));
    transfer::UploadSink::Options o;
    o.name = s->name;
    s->sink = transfer::UploadSink::start(*s, *shared_.executor, *shared_.root, std::move(o),
                                          nullptr, [this, s](Status status, uint64_t) {
                                            s->sink.reset();
                                            closed(*s, status);
                                            s->close();  // released once the engine lets go
                                          });
    return s;
  }

  /// A sender's file is committed, or was not kept: count it, log it
  /// (rate-limited), and free its slot.
  void closed(const Sender& s, const Status& status) {
    --open_files_;
    count(status.ok() ? files_ : failed_);
    if (!commit_log_.allow(uv_now(shared_.loop))) return;
    if (uint64_t suppressed = commit_log_.take_suppressed(); suppressed > 0) {
      FSRV_LOG_INFO("udp-sink: %llu commit lines suppressed (see STATS)",
                    static_cast<unsigned long long>(suppressed));
    }
    if (status.ok()) {
      FSRV_LOG_INFO(
          "udp-sink: %s committed: %llu datagrams, %llu bytes from %s%s", s.name.c_str(),
          static_cast<unsigned long long>(s.datagrams), static_cast<unsigned long long>(s.bytes),
          s.peer_key().c_str(),
          s.dropped ? (" (" + std::to_string(s.dropped) + " dropped: disk too slow)").c_str() : "");
    } else {
      FSRV_LOG_WARN("udp-sink: %s from %s not kept (%llu datagrams): %s", s.name.c_str(),
                    s.peer_key().c_str(), static_cast<unsigned long long>(s.datagrams),
                    status.error.c_str());
    }
  }

  /// Commits a sender's file once its writes are done; it leaves the table
  /// now, so a new datagram from the same address starts a new file.
  void finish(std::unordered_map<std::string, Sender*>::iterator it) {
    Sender* s = it->second;
    senders_.erase(it);
    s->stop_timer();
    if (s->sink) {
      s->sink->end();  // closed() follows, after the commit (or the first error)
    } else {
      closed(*s, Status::failure(Errc::kTooLarge, "over --max-upload"));
      s->close();
    }
  }

  const Options& options_;  ///< the --udp-* options (udp_sink_options.hpp)
  stats::Counter datagrams_, bytes_, dropped_, quota_dropped_, full_dropped_, readonly_dropped_,
      files_, failed_;
  /// Files open: senders in the table plus those still committing.
  int open_files_ = 0;
  std::unordered_map<std::string, AddressQuota> quotas_;
  reactor::LogLimiter quota_log_, full_log_, commit_log_{1000};
  int listeners_ = 0;
  std::unordered_map<std::string, Sender*> senders_;  ///< by "IP:PORT"; each owns itself
};

void Sender::on_timer() { service.idle(*this); }

}  // namespace

const ServiceInfo& info() {
  static const ServiceInfo kInfo{
      .name = "udp-sink",
      .description = "udp-sink (tugas 2, UDP): datagrams saved per sender as udp-IP-PORT-TIME.bin",
      .default_ports = {5005},
      .try_command = "bin/udpsend -p {port} FILE",
      .register_stats =
          [](stats::Schema& schema) {
            for (const char* p :
                 {"datagrams", "bytes", "dropped", "quota_dropped", "senders_full_dropped",
                  "readonly_dropped", "files/committed", "files/failed"}) {
              schema.add(std::string("udp-sink/") + p);
            }
          },
      .transport = Transport::kDatagram,
      .create_datagram = [](Shared& shared) -> std::unique_ptr<DatagramService> {
        return std::make_unique<UdpSinkService>(shared);
      },
      .policy_keys = kPolicyReadOnly,
      .add_options = add_options};
  return kInfo;
}

}  // namespace fsrv::services::udp_sink
