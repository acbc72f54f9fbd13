#pragma once
// Direct access to the kFast base64 codec with a chosen instruction set, so
// tests, the fuzzer and the benchmark can exercise the scalar path on every
// machine and the AVX2 path where the CPU has it. Production code should
// use encoder(Base64Kind::kFast) / make_decoder(Base64Kind::kFast), which
// pick the best instruction set at run time.

#include <memory>
#include <string_view>

#include "fsrv/codec/base64.hpp"

namespace fsrv::codec {

/// Instruction set of the kFast codec.
enum class Base64Isa {
  kScalar,  ///< portable table-driven C++; always available
  kAvx2,    ///< 256-bit SIMD (Mula/Lemire); needs cpu_has_avx2()
};

/// "scalar" or "avx2".
std::string_view to_string(Base64Isa isa);

/// True if this CPU (and OS) supports AVX2 (__builtin_cpu_supports).
bool cpu_has_avx2();

/// The instruction set encoder(kFast)/make_decoder(kFast) use here:
/// kAvx2 if cpu_has_avx2(), else kScalar.
Base64Isa best_isa();

/// The process-wide kFast encoder for `isa` (never null; lives forever).
/// Precondition: isa != kAvx2 || cpu_has_avx2() (else std::abort()).
const Encoder& fast_encoder(Base64Isa isa);

/// A fresh kFast streaming decoder for `isa`.
/// Precondition: isa != kAvx2 || cpu_has_avx2() (else std::abort()).
std::unique_ptr<Decoder> make_fast_decoder(Base64Isa isa);

}  // namespace fsrv::codec
