#pragma once
// The course file protocol on one connection (docs/PROTOCOL.md): frames
// requests (request.hpp), runs each through the executor and storage, and
// streams replies with backpressure. One request at a time per connection;
// pipelined requests wait in the input buffer.
//
// GET pulls: a chunk is read and encoded only when one of the connection's
// kGetChunksInFlight buffers is free again, i.e. when the socket took an
// earlier one (h2o's "proceed" model). UPLOAD reads the payload straight into
// one of two chunk buffers; a full buffer is decoded and written to the
// temporary file by the executor while the other fills; when both are busy,
// reading stops until the disk catches up.

#include <memory>

#include "fsrv/reactor/connection.hpp"
#include "fsrv/reactor/server.hpp"

namespace fsrv::protocol {

/// Makes the protocol handler of a new connection (ServerContext::make_handler).
std::unique_ptr<reactor::ConnectionHandler> make_file_session(reactor::Connection& conn);

}  // namespace fsrv::protocol
