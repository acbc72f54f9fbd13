// A Connection's TLS hooks: writes encrypted (or held until the handshake
// completes), records pumped from the socket to the handler (reactor/tls.hpp
// has the TlsSession they drive).

#include <string>
#include <utility>

#include "connection_internal.hpp"
#include "fsrv/core/log.hpp"
#include "fsrv/reactor/connection.hpp"
#include "fsrv/reactor/reactor.hpp"
#include "fsrv/reactor/tls.hpp"

namespace fsrv::reactor {

// Encrypts a write (or holds it until the handshake completes) and queues
// the records; pending_bytes() keeps counting its plaintext.
int Connection::tls_write(WriteReq* w, const uv_buf_t* bufs, unsigned n) {
  if (!tls_->established()) {
    std::string plain;
    for (unsigned i = 0; i < n; ++i) plain.append(bufs[i].base, bufs[i].len);
    w->owned = std::move(plain);
    tls_->held.push_back(w);
    return 0;
  }
  std::string cipher = std::exchange(tls_->spare, std::string());
  cipher.clear();
  // encrypt() also takes whatever OpenSSL queued before (a ticket), in order.
  if (!tls_->encrypt(bufs, n, cipher)) return UV_EPROTO;
  w->owned = std::move(cipher);  // the plaintext (an outbox) is no longer needed
  uv_buf_t b = uv_buf_init(w->owned.data(), static_cast<unsigned>(w->owned.size()));
  return uv_write(&w->req, stream(), &b, 1, on_written);
}

// Writes the ciphertext OpenSSL produced on its own (handshake flights,
// alerts, session tickets, close_notify): counted nowhere but on the wire.
void Connection::tls_flush() {
  std::string out;
  if (closing_ || tls_->take_output(out) == 0) return;
  auto* w = new WriteReq{{}, ConnRef(this), nullptr, std::move(out), 0, false};
  w->req.data = w;
  uv_buf_t b = uv_buf_init(w->owned.data(), static_cast<unsigned>(w->owned.size()));
  if (int rc = uv_write(&w->req, stream(), &b, 1, on_written); rc != 0) fail_write(w, rc);
}

// The handshake's writes held back are encrypted and queued in order.
void Connection::tls_release_held() {
  for (WriteReq* w : std::exchange(tls_->held, {})) {
    uv_buf_t b = uv_buf_init(w->owned.data(), static_cast<unsigned>(w->owned.size()));
    int rc = closing_ ? UV_ECANCELED : tls_write(w, &b, 1);
    if (rc != 0) fail_write(w, rc);
  }
}

// Ciphertext arrived (or a paused reader resumed): advance the handshake,
// then hand the plaintext to the handler.
void Connection::tls_pump() {
  if (!tls_->established()) {
    TlsSession::Step step = tls_->handshake();
    tls_flush();
    if (closing_) return;
    if (step == TlsSession::Step::kWant) return;
    if (step == TlsSession::Step::kFailed) {
      reactor_.stats->add(reactor_.tls_handshakes_failed);
      if (reactor_.tls_failure_log.allow(now_ms())) {
        const std::string_view label = label_.empty() ? std::string_view("tls") : label_;
        FSRV_LOG_INFO("%.*s: TLS handshake from %s failed: %s; %llu similar failures suppressed",
                      static_cast<int>(label.size()), label.data(), peer_text().c_str(),
                      tls_->error().c_str(),
                      static_cast<unsigned long long>(reactor_.tls_failure_log.take_suppressed()));
      }
      close();
      return;
    }
    reactor_.stats->add(reactor_.tls_handshakes_ok);
    // The handshake was timed as a head; a request's own head is timed
    // from its first byte, which may have come with the handshake's end.
    request_head_done();
    if (tls_->has_buffered() && handler_->has_requests()) open_head();
    tls_release_held();
    if (closing_) return;
  }
  tls_deliver();
}

// Plaintext to the handler while it reads; then a pending EOF.
void Connection::tls_deliver() {
  if (!tls_->established()) {
    if (tls_->eof) {  // the client left mid-handshake
      reactor_.stats->add(reactor_.tls_handshakes_failed);
      close();
    }
    return;
  }
  bool drained = false;  // nothing more to decrypt (not: the handler paused)
  while (reading_ && !closing_) {
    ptrdiff_t n = tls_->read(handler_->read_space());
    tls_flush();
    if (closing_) return;
    if (n > 0) {
      handler_->on_read(static_cast<size_t>(n));
      continue;
    }
    if (n == TlsSession::kWant || n == TlsSession::kEof) {
      if (n == TlsSession::kEof) tls_->eof = true;
      drained = true;
      break;
    }
    close_for("bad TLS record: " + tls_->error());
    return;
  }
  // After the socket's EOF a partial record can never complete: EOF too.
  if (tls_->eof && drained && !tls_->eof_told && reading_ && !closing_) {
    tls_->eof_told = true;
    pause_reading();
    handler_->on_eof();
  }
}

}  // namespace fsrv::reactor
