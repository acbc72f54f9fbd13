#pragma once
// Connection admission beyond the global --max-conns: each listener's share
// (a cap, and a few slots kept for it whatever the others do) and a cap per
// source address. One listener's clients, or one address, can then fill
// only their own part of the table (HAProxy: maxconn per frontend; nginx:
// limit_conn per $binary_remote_addr; vsftpd: max_per_ip).
//
// The table counts admitted connections only; its per-address map holds
// one entry per address with a live connection, so it is bounded by the
// connection limit itself. Every member takes the table's mutex: thread
// mode with several loops (--loops) admits on all of them against one
// table, so the limits hold for the process as a whole (the prefork master
// is the only user of its own table).

#include <uv.h>

#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "fsrv/stats/stats.hpp"

namespace fsrv::reactor {

/// A listener's part of the connection table.
struct ListenerShare {
  int max_conns = 0;  ///< most connections it may hold (0: not a TCP listener)
  int reserved = 0;   ///< slots no other listener may take from it
};

/// Why a connection was not admitted.
enum class Admission {
  kOk,
  kBusy,          ///< the whole server is at --max-conns
  kListenerFull,  ///< its listener's share is used (or the rest is kept for others)
  kAddressFull,   ///< its source address holds --max-conns-per-address
};

/// The counters a refusal bumps (STATS "NAME/connections/refused/...").
struct ShareCounters {
  stats::Counter refused_share;
  stats::Counter refused_address;
};

class ConnectionLimits {
 public:
  /// Slots kept per listener when several listen: a quarter of --max-conns
  /// spread over them, so a flood of one service leaves every other
  /// listener this many slots (plus whatever is free).
  static constexpr int kReservedQuarter = 4;

  /// The default shares of `asked.size()` listeners under `max_conns`:
  /// asked[i] < 0 for a datagram listener (share 0), 0 for the default,
  /// > 0 for an explicit `max-conns=N`. With one TCP listener it may take
  /// everything; with n, each keeps max_conns / (4 n) slots and may take up
  /// to max_conns minus what the others keep (or its explicit cap).
  static std::vector<ListenerShare> plan(int max_conns, const std::vector<int>& asked);

  /// Turns the table on. `per_address` 0 = no per-address cap. `counters`
  /// (one per listener, may be empty) are bumped in `slot` on refusal.
  void configure(int max_conns, std::vector<ListenerShare> shares, int per_address,
                 std::vector<ShareCounters> counters = {}, stats::StatsSlot* slot = nullptr);
  /// A live change of the limits (SIGHUP): new totals and shares for the
  /// same listeners; the connections open stay counted and are never
  /// dropped, a listener over its new share only refuses newcomers.
  void replan(int max_conns, std::vector<ListenerShare> shares, int per_address);
  bool enabled() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return !shares_.empty();
  }
  /// Whether a new connection from `address` on `listener` may be served;
  /// counts the refusal in STATS when not.
  Admission admit(int listener, std::string_view address);
  /// admit() and, when it says kOk, add() under one lock: what tables
  /// shared by several loops need, or two loops could each take the last
  /// slot between the other's check and count.
  Admission admit_and_add(int listener, const std::string& address);
  /// An admitted connection opened / closed.
  void add(int listener, const std::string& address);
  void remove(int listener, const std::string& address);

  int active(int listener) const;
  int total() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return total_;
  }
  ListenerShare share(int listener) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return shares_[static_cast<size_t>(listener)];
  }
  int per_address() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return per_address_;
  }
  /// Addresses with a live connection (bounded by the connection limit).
  size_t addresses() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return by_address_.size();
  }

 private:
  Admission admit_locked(int listener, std::string_view address);
  void add_locked(int listener, const std::string& address);
  mutable std::mutex mutex_;  ///< guards every member below
  int max_conns_ = 0;
  int per_address_ = 0;
  int total_ = 0;
  std::vector<ListenerShare> shares_;
  std::vector<int> active_;
  std::vector<ShareCounters> counters_;
  stats::StatsSlot* slot_ = nullptr;
  std::unordered_map<std::string, int> by_address_;
};

/// The peer address of a connected TCP handle as a key: 4 bytes (IPv4, or
/// an IPv4-mapped IPv6 address) or 16 (IPv6); "" if unknown.
std::string peer_key(const uv_tcp_t* tcp);
/// The key of a peer address as accept4 gave it ("" for a family that is
/// neither IPv4 nor IPv6).
std::string peer_key(const sockaddr* addr);
/// A key of peer_key() as text ("127.0.0.1", "::1").
std::string address_text(std::string_view key);

}  // namespace fsrv::reactor
