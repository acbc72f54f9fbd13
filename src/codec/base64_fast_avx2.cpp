// placeholder, replaced below
#include "fsrv/codec/base64_detail.hpp"
namespace fsrv::codec::detail {
size_t encode_avx2(const uint8_t*, size_t, char*) { return 0; }
size_t decode_avx2(const char*, size_t, uint8_t*) { return 0; }
}  // namespace fsrv::codec::detail
