#include "fsrv/reactor/conn_limits.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

namespace fsrv::reactor {

std::vector<ListenerShare> ConnectionLimits::plan(int max_conns, const std::vector<int>& asked) {
  int tcp = 0;
  for (int a : asked) tcp += a >= 0 ? 1 : 0;
  std::vector<ListenerShare> out(asked.size());
  int keep = tcp > 1 ? max_conns / (kReservedQuarter * tcp) : 0;
  int kept_total = 0;
  for (size_t i = 0; i < asked.size(); ++i) {
    if (asked[i] < 0) continue;
    out[i].reserved = asked[i] > 0 ? std::min(keep, asked[i]) : keep;
    kept_total += out[i].reserved;
  }
  for (size_t i = 0; i < asked.size(); ++i) {
    if (asked[i] < 0) continue;
    int room = max_conns - (kept_total - out[i].reserved);
    out[i].max_conns = std::max(1, asked[i] > 0 ? std::min(asked[i], room) : room);
  }
  return out;
}

void ConnectionLimits::configure(int max_conns, std::vector<ListenerShare> shares, int per_address,
                                 std::vector<ShareCounters> counters, stats::StatsSlot* slot) {
  std::lock_guard<std::mutex> lock(mutex_);
  max_conns_ = max_conns;
  shares_ = std::move(shares);
  active_.assign(shares_.size(), 0);
  per_address_ = per_address;
  counters_ = std::move(counters);
  counters_.resize(shares_.size());
  slot_ = slot;
}

void ConnectionLimits::replan(int max_conns, std::vector<ListenerShare> shares, int per_address) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (shares_.empty() || shares.size() != shares_.size()) return;
  max_conns_ = max_conns;
  shares_ = std::move(shares);
  per_address_ = per_address;
}

Admission ConnectionLimits::admit(int listener, std::string_view address) {
  std::lock_guard<std::mutex> lock(mutex_);
  return admit_locked(listener, address);
}

Admission ConnectionLimits::admit_and_add(int listener, const std::string& address) {
  std::lock_guard<std::mutex> lock(mutex_);
  Admission verdict = admit_locked(listener, address);
  if (verdict == Admission::kOk) add_locked(listener, address);
  return verdict;
}

Admission ConnectionLimits::admit_locked(int listener, std::string_view address) {
  if (shares_.empty() || listener < 0 || static_cast<size_t>(listener) >= shares_.size()) {
    return Admission::kOk;
  }
  auto i = static_cast<size_t>(listener);
  Admission verdict = Admission::kOk;
  if (total_ >= max_conns_) {
    verdict = Admission::kBusy;
  } else if (active_[i] >= shares_[i].max_conns) {
    verdict = Admission::kListenerFull;
  } else if (active_[i] >= shares_[i].reserved) {
    // Beyond its own kept slots it may only use what no other listener keeps.
    int kept_for_others = 0;
    for (size_t j = 0; j < shares_.size(); ++j) {
      if (j != i) kept_for_others += std::max(0, shares_[j].reserved - active_[j]);
    }
    if (total_ + 1 + kept_for_others > max_conns_) verdict = Admission::kListenerFull;
  }
  if (verdict == Admission::kOk && per_address_ > 0 && !address.empty()) {
    auto it = by_address_.find(std::string(address));
    if (it != by_address_.end() && it->second >= per_address_) verdict = Admission::kAddressFull;
  }
  if (slot_ && verdict == Admission::kListenerFull) slot_->add(counters_[i].refused_share);
  if (slot_ && verdict == Admission::kAddressFull) slot_->add(counters_[i].refused_address);
  return verdict;
}

void ConnectionLimits::add(int listener, const std::string& address) {
  std::lock_guard<std::mutex> lock(mutex_);
  add_locked(listener, address);
}

void ConnectionLimits::add_locked(int listener, const std::string& address) {
  if (shares_.empty() || listener < 0 || static_cast<size_t>(listener) >= shares_.size()) return;
  ++active_[static_cast<size_t>(listener)];
  ++total_;
  if (!address.empty()) ++by_address_[address];
}

void ConnectionLimits::remove(int listener, const std::string& address) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (shares_.empty() || listener < 0 || static_cast<size_t>(listener) >= shares_.size()) return;
  --active_[static_cast<size_t>(listener)];
  --total_;
  auto it = by_address_.find(address);
  if (it != by_address_.end() && --it->second <= 0) by_address_.erase(it);
}

int ConnectionLimits::active(int listener) const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (listener < 0 || static_cast<size_t>(listener) >= active_.size()) return 0;
  return active_[static_cast<size_t>(listener)];
}

std::string peer_key(const uv_tcp_t* tcp) {
  sockaddr_storage addr{};
  int len = sizeof addr;
  if (uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "";
  return peer_key(reinterpret_cast<const sockaddr*>(&addr));
}

std::string peer_key(const sockaddr* sa) {
  const auto& addr = *sa;
  if (addr.sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    return std::string(reinterpret_cast<const char*>(&in->sin_addr), 4);
  }
  if (addr.sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
      return std::string(reinterpret_cast<const char*>(&in6->sin6_addr) + 12, 4);
    }
    return std::string(reinterpret_cast<const char*>(&in6->sin6_addr), 16);
  }
  return "";
}

std::string address_text(std::string_view key) {
  char text[INET6_ADDRSTRLEN] = "?";
  if (key.size() == 4) inet_ntop(AF_INET, key.data(), text, sizeof text);
  if (key.size() == 16) inet_ntop(AF_INET6, key.data(), text, sizeof text);
  return text;
}

}  // namespace fsrv::reactor
