#pragma once
// The version of this build: the release number and the git commit, baked
// in by the Makefile (mk/ops.mk passes FSRV_VERSION and FSRV_COMMIT to
// src/core/version.cpp only, so a new commit recompiles one file).

#include <string>
#include <string_view>

namespace fsrv {

/// The release number ("1.0.0").
std::string_view version();
/// The git commit the binary was built from (12 hex digits), "unknown"
/// outside a git checkout.
std::string_view git_commit();
/// "fsrv VERSION (commit COMMIT)": what --version prints.
std::string version_line();
/// "fsrv/VERSION": the product token of the HTTP Server field (RFC 9110
/// section 10.2.4).
std::string server_token();

}  // namespace fsrv
