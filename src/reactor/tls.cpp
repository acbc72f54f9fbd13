#include "fsrv/reactor/tls.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

namespace fsrv::reactor {

namespace {

/// Bytes a TLS record adds to at most 16 KiB of plaintext with AES-GCM or
/// ChaCha20-Poly1305: 5 of header, 16 of tag, 1 of inner type (TLS 1.3) or
/// 8 of explicit nonce (TLS 1.2); rounded up.
constexpr size_t kRecordOverhead = 32;

/// The oldest OpenSSL error of the thread's queue as text, queue cleared.
std::string openssl_error() {
  unsigned long code = ERR_get_error();
  std::string text;
  if (code != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    // "error:0A000086:SSL routines::certificate verify failed": keep the reason.
    const char* reason = ERR_reason_error_string(code);
    text = reason ? reason : buf;
  }
  ERR_clear_error();
  return text.empty() ? "unknown TLS error" : text;
}

/// Whether `path` can be opened for reading; else errno's text.
std::string readable(const std::string& path) {
  FILE* f = fopen(path.c_str(), "r");
  if (!f) return strerror(errno);
  fclose(f);
  return "";
}

}  // namespace

// ---------------------------------------------------------------- TlsContext

std::unique_ptr<TlsContext> TlsContext::load(const std::string& cert_file,
                                             const std::string& key_file, std::string* error) {
  auto fail = [&](const std::string& why) {
    if (error) *error = why;
    ERR_clear_error();
    return nullptr;
  };
  if (cert_file.empty()) return fail("--tls-cert is required by a tls listener");
  if (key_file.empty()) return fail("--tls-key is required by a tls listener");
  if (std::string why = readable(cert_file); !why.empty()) {
    return fail("--tls-cert " + cert_file + ": " + why);
  }
  if (std::string why = readable(key_file); !why.empty()) {
    return fail("--tls-key " + key_file + ": " + why);
  }
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) return fail("cannot create a TLS context: " + openssl_error());
  std::unique_ptr<TlsContext> out(new TlsContext(ctx));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  // Renegotiation lets a client make the server redo the expensive half of
  // a handshake at will (CVE-2011-1473); TLS 1.3 has none anyway.
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Idle connections give their record buffers back (34 KiB each). The
  // chain sent is the one in --tls-cert (a fullchain file): without
  // SSL_MODE_NO_AUTO_CHAIN OpenSSL tries to build one from the empty
  // certificate store at every handshake (X509_STORE_CTX_init,
  // X509_verify_cert: about 1% of a handshake's CPU), as nginx also avoids.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_NO_AUTO_CHAIN);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    return fail("--tls-cert " + cert_file + ": not a PEM certificate (" + openssl_error() + ")");
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    std::string why = openssl_error();
    if (why.find("mismatch") != std::string::npos) {  // X509_R_KEY_VALUES_MISMATCH
      return fail("--tls-key " + key_file + " does not match --tls-cert " + cert_file);
    }
    return fail("--tls-key " + key_file + ": not a PEM private key (" + why + ")");
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return fail("--tls-key " + key_file + " does not match --tls-cert " + cert_file + " (" +
                openssl_error() + ")");
  }
  return out;
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

bool ktls_offered() {
  std::ifstream f("/proc/sys/net/ipv4/tcp_available_ulp");
  std::string word;
  while (f >> word) {
    if (word == "tls") return true;
  }
  return false;
}

std::string tls_send_path_text() {
  // kTLS needs OpenSSL to own the socket (a socket BIO: BIO_set_ktls), which
  // the libuv-driven memory BIOs here do not give it; replies are encrypted
  // in user space either way, and the log says whether the kernel could.
  return ktls_offered() ? "tls: the kernel offers kTLS, unused (memory BIOs): replies are read in "
                          "executor chunks and encrypted on the loop"
                        : "tls: kTLS not offered by this kernel (tcp_available_ulp lacks tls): "
                          "replies are read in executor chunks and encrypted on the loop";
}

// ---------------------------------------------------------------- TlsSession

/// The write side: a BIO whose writes append to the session's current sink
/// (the caller's buffer during encrypt(), else staged_), so records are
/// copied once, with no memory BIO in between (BIO_meth_new(3)).
struct TlsSinkBio {
  static int write(BIO* b, const char* data, int len) {
    auto* session = static_cast<TlsSession*>(BIO_get_data(b));
    std::string& out = *session->sink_;
    if (session->direct_ && !out.empty()) {
      // The records held so far go straight to the socket; this one is
      // held in their place (the caller's write must have bytes to write).
      uv_buf_t held = uv_buf_init(out.data(), static_cast<unsigned>(out.size()));
      int n = uv_try_write(session->direct_, &held, 1);
      if (n == static_cast<int>(out.size())) {
        out.clear();
      } else {
        // The socket is full (or failed: the caller's write will say so):
        // from here every record goes to `out`, in order.
        if (n > 0) out.erase(0, static_cast<size_t>(n));
        session->direct_ = nullptr;
        out.reserve(out.size() + session->reserve_);
      }
    }
    out.append(data, static_cast<size_t>(len));
    return len;
  }
  static long ctrl(BIO*, int cmd, long, void*) {
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;  // nothing is ever pending here
  }
  static int create(BIO* b) {
    BIO_set_init(b, 1);
    return 1;
  }
  static BIO_METHOD* method() {
    static BIO_METHOD* m = [] {
      BIO_METHOD* meth = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "fsrv sink");
      BIO_meth_set_write(meth, write);
      BIO_meth_set_ctrl(meth, ctrl);
      BIO_meth_set_create(meth, create);
      return meth;
    }();
    return m;
  }
};

TlsSession::TlsSession(const TlsContext& ctx) {
  ssl_ = SSL_new(ctx.get());
  rbio_ = BIO_new(BIO_s_mem());
  wbio_ = BIO_new(TlsSinkBio::method());
  BIO_set_data(wbio_, this);
  // An empty read BIO means "retry later", not end of file (BIO_s_mem(3)).
  BIO_set_mem_eof_return(rbio_, -1);
  SSL_set_bio(ssl_, rbio_, wbio_);  // ssl_ owns both from here
  SSL_set_accept_state(ssl_);
}

TlsSession::~TlsSession() { SSL_free(ssl_); }

std::span<char> TlsSession::cipher_space() {
  // Not zeroed (make_unique<char[]> would clear 17 KiB per connection):
  // only bytes the socket read are ever handed on.
  if (!cipher_in_) cipher_in_.reset(new char[kCipherReadSize]);
  return {cipher_in_.get(), kCipherReadSize};
}

void TlsSession::feed(size_t n) {
  // A memory BIO grows as needed: the write always takes all n bytes.
  BIO_write(rbio_, cipher_in_.get(), static_cast<int>(n));
}

void TlsSession::set_error(const char* what) {
  error_ = std::string(what) + ": " + openssl_error();
}

TlsSession::Step TlsSession::handshake() {
  if (established_) return Step::kDone;
  int rc = SSL_do_handshake(ssl_);
  if (rc == 1) {
    established_ = true;
    return Step::kDone;
  }
  int err = SSL_get_error(ssl_, rc);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return Step::kWant;
  set_error("handshake failed");
  return Step::kFailed;
}

ptrdiff_t TlsSession::read_result(int rc) {
  if (rc > 0) return rc;
  int err = SSL_get_error(ssl_, rc);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return kWant;
  if (err == SSL_ERROR_ZERO_RETURN) return kEof;
  set_error("bad TLS record");
  return kError;
}

ptrdiff_t TlsSession::ready() {
  if (int n = SSL_pending(ssl_); n > 0) return n;
  // SSL_peek decrypts the next record (if a whole one was fed) and leaves
  // its plaintext in OpenSSL for read(): nothing is taken, no buffer needed.
  char byte;
  return read_result(SSL_peek(ssl_, &byte, 1));
}

ptrdiff_t TlsSession::read(std::span<char> out) {
  if (out.empty()) return kWant;
  return read_result(
      SSL_read(ssl_, out.data(), static_cast<int>(std::min<size_t>(out.size(), 1 << 30))));
}

bool TlsSession::has_buffered() const {
  return SSL_pending(ssl_) > 0 || BIO_ctrl_pending(rbio_) > 0;
}

bool TlsSession::encrypt(const uv_buf_t* bufs, unsigned n, std::string& out, uv_stream_t* direct) {
  size_t total = 0;
  for (unsigned i = 0; i < n; ++i) total += bufs[i].len;
  take_output(out);  // records made before (a ticket) go first
  // Records add a header and a tag (and TLS 1.3 a type byte) per 16 KiB:
  // reserving that once spares the string's regrowth copies. Writing
  // directly, only once the socket is full (most bytes never land here).
  size_t need = total + (total / (16 << 10) + 1) * kRecordOverhead;
  if (direct) {
    reserve_ = need;
    out.reserve(out.size() + std::min<size_t>(need, (16 << 10) + kRecordOverhead));
  } else {
    out.reserve(out.size() + need);
  }
  direct_ = direct;
  sink_ = &out;
  bool ok = true;
  for (unsigned i = 0; i < n && ok; ++i) {
    const char* p = bufs[i].base;
    size_t left = bufs[i].len;
    while (left > 0) {
      size_t written = 0;
      // The sink takes every record, so SSL_write_ex takes everything.
      if (SSL_write_ex(ssl_, p, left, &written) != 1) {
        set_error("encrypt failed");
        ok = false;
        break;
      }
      p += written;
      left -= written;
    }
  }
  sink_ = &staged_;
  direct_ = nullptr;
  return ok;
}

void TlsSession::close_notify() {
  if (established_) SSL_shutdown(ssl_);
  ERR_clear_error();
}

size_t TlsSession::take_output(std::string& out) {
  size_t n = staged_.size();
  if (n == 0) return 0;
  if (out.empty()) {
    out.swap(staged_);
  } else {
    out.append(staged_);
  }
  std::string().swap(staged_);  // handshake flights are small: no capacity kept
  return n;
}

}  // namespace fsrv::reactor
