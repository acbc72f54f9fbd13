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
  // With nothing queued in libuv the records can go straight to the socket
  // (a big chunk: most of them, copied once fewer); the last stays in
  // `cipher` for the uv_write whose callback completes the request.
  uv_stream_t* direct = stream()->write_queue_size == 0 ? stream() : nullptr;
  if (!tls_->encrypt(bufs, n, cipher, direct)) return UV_EPROTO;
  w->owned = std::move(cipher);  // the plaintext (an outbox) is no longer needed
  uv_buf_t b = uv_buf_init(w->owned.data(), static_cast<unsigned>(w->owned.size()));
  return uv_write(&w->req, stream(), &b, 1, on_written);
}

// Writes the ciphertext OpenSSL produced on its own (handshake flights,
// alerts, session tickets, close_notify): counted nowhere but on the wire.
void Connection::tls_flush() {
  std::string out;
  if (closing_ || tls_->take_output(out) == 0) return;
  // Nothing queued in libuv: straight to the socket. These bytes have no
  // callback and no count, so a write the socket takes whole needs no
  // write request, and spares libuv's epoll_ctl when a write drains (as
  // flush_outbox does for clear text): two or three per handshake.
  if (stream()->write_queue_size == 0) {
    uv_buf_t b = uv_buf_init(out.data(), static_cast<unsigned>(out.size()));
    int n = uv_try_write(stream(), &b, 1);
    if (n > 0) {
      touch();
      if (static_cast<size_t>(n) == out.size()) return;
      out.erase(0, static_cast<size_t>(n));
    }
  }
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
    // A flight or an alert goes out now; the tickets OpenSSL stages once
    // the handshake is done wait for the first reply (tls_deliver).
    if (step != TlsSession::Step::kDone) tls_flush();
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
    // The handler's read space is asked for only when plaintext is ready:
    // asking at every pump would make a waiting connection hold a read
    // buffer (http lends one per read: a 64 KiB allocation and its page
    // faults per connection once its spares are out).
    ptrdiff_t n = tls_->ready();
    if (n > 0) n = tls_->read(handler_->read_space());
    if (n > 0) {
      // Records OpenSSL made meanwhile (the session tickets that end the
      // handshake) are not flushed before the handler runs: its reply takes
      // them along in the same write (encrypt() puts them first), else the
      // flush below sends them. One write and one segment fewer per
      // connection.
      handler_->on_read(static_cast<size_t>(n));
      continue;
    }
    tls_flush();  // an alert, a ticket, a KeyUpdate reply
    if (closing_) return;
    if (n == TlsSession::kWant || n == TlsSession::kEof) {
      if (n == TlsSession::kEof) tls_->eof = true;
      drained = true;
      break;
    }
    close_for("bad TLS record: " + tls_->error());
    return;
  }
  tls_flush();  // the handler paused with records still staged
  // After the socket's EOF a partial record can never complete: EOF too.
  if (tls_->eof && drained && !tls_->eof_told && reading_ && !closing_) {
    tls_->eof_told = true;
    pause_reading();
    handler_->on_eof();
  }
}

}  // namespace fsrv::reactor
