// Base64 throughput: OpenSSL EVP_EncodeBlock/EVP_DecodeBlock (the baseline),
// libb64, and kFast scalar and AVX2, on 1 MiB and 64 MiB of random bytes,
// plus memcpy of the same buffer as a memory-bandwidth reference.
//
// Units: bytes_per_second counts the *binary* size (the file bytes) for
// both directions, so encode and decode figures of one buffer compare
// directly (the base64 text is 4/3 larger). After the run, a summary prints
// each codec's speed-up over OpenSSL measured in this same run.
//
//   make bench-codec CODEC_BENCH_ARGS=--benchmark_min_time=0.5

#include <benchmark/benchmark.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "fsrv/codec/base64.hpp"
#include "fsrv/codec/base64_fast.hpp"

namespace {

using fsrv::codec::Base64Isa;
using fsrv::codec::Base64Kind;
using fsrv::codec::decode_capacity;
using fsrv::codec::encoded_size;

constexpr int64_t kMiB = int64_t{1} << 20;
/// 1 MiB: a typical protocol chunk, mostly cache-resident.
constexpr int64_t kSmall = 1 * kMiB;
/// 64 MiB: far beyond L2, so memory bandwidth starts to matter.
constexpr int64_t kLarge = 64 * kMiB;

/// Random binary data of `n` bytes and its base64, built once per size.
struct Data {
  std::vector<uint8_t> raw;
  std::string text;
  std::vector<uint8_t> raw_out;  // decode / memcpy destination
  std::string text_out;          // encode destination
};

const Data& data(int64_t n) {
  static std::map<int64_t, Data> cache;
  auto it = cache.find(n);
  if (it != cache.end()) return it->second;
  Data d;
  std::mt19937_64 rng(n);
  d.raw.resize(static_cast<size_t>(n));
  for (auto& b : d.raw) b = static_cast<uint8_t>(rng());
  d.text.resize(encoded_size(d.raw.size()));
  fsrv::codec::encoder(Base64Kind::kLibb64).encode(d.raw, d.text.data());
  d.raw_out.resize(decode_capacity(d.text.size()));
  d.text_out.resize(encoded_size(d.raw.size()) + 1);  // + EVP's NUL
  return cache.emplace(n, std::move(d)).first->second;
}

void finish(benchmark::State& state, int64_t n) { state.SetBytesProcessed(state.iterations() * n); }

void BM_Memcpy(benchmark::State& state) {
  auto& d = const_cast<Data&>(data(state.range(0)));
  for (auto _ : state) {
    std::memcpy(d.raw_out.data(), d.raw.data(), d.raw.size());
    benchmark::DoNotOptimize(d.raw_out.data());
    benchmark::ClobberMemory();
  }
  finish(state, state.range(0));
}

void BM_EncodeOpenSsl(benchmark::State& state) {
  auto& d = const_cast<Data&>(data(state.range(0)));
  for (auto _ : state) {
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(d.text_out.data()), d.raw.data(),
                            static_cast<int>(d.raw.size()));
    benchmark::DoNotOptimize(n);
  }
  finish(state, state.range(0));
}

void BM_DecodeOpenSsl(benchmark::State& state) {
  auto& d = const_cast<Data&>(data(state.range(0)));
  for (auto _ : state) {
    int n = EVP_DecodeBlock(d.raw_out.data(), reinterpret_cast<const unsigned char*>(d.text.data()),
                            static_cast<int>(d.text.size()));
    if (n < 0) state.SkipWithError("EVP_DecodeBlock failed");
    benchmark::DoNotOptimize(n);
  }
  finish(state, state.range(0));
}

void encode_bench(benchmark::State& state, const fsrv::codec::Encoder& enc) {
  auto& d = const_cast<Data&>(data(state.range(0)));
  for (auto _ : state) {
    size_t n = enc.encode(d.raw, d.text_out.data());
    benchmark::DoNotOptimize(n);
  }
  if (std::memcmp(d.text_out.data(), d.text.data(), d.text.size()) != 0) {
    state.SkipWithError("wrong output");
  }
  finish(state, state.range(0));
}

template <typename MakeDecoder>
void decode_bench(benchmark::State& state, MakeDecoder make) {
  auto& d = const_cast<Data&>(data(state.range(0)));
  for (auto _ : state) {
    auto dec = make();
    auto st = dec->update({d.text.data(), d.text.size()}, d.raw_out.data());
    if (!st.ok || !dec->finish(nullptr).ok) state.SkipWithError("decode failed");
    benchmark::DoNotOptimize(st.written);
  }
  if (std::memcmp(d.raw_out.data(), d.raw.data(), d.raw.size()) != 0) {
    state.SkipWithError("wrong output");
  }
  finish(state, state.range(0));
}

void BM_EncodeLibb64(benchmark::State& s) {
  encode_bench(s, fsrv::codec::encoder(Base64Kind::kLibb64));
}
void BM_EncodeFastScalar(benchmark::State& s) {
  encode_bench(s, fsrv::codec::fast_encoder(Base64Isa::kScalar));
}
void BM_EncodeFastAvx2(benchmark::State& s) {
  if (!fsrv::codec::cpu_has_avx2()) return s.SkipWithError("no AVX2");
  encode_bench(s, fsrv::codec::fast_encoder(Base64Isa::kAvx2));
}
void BM_DecodeLibb64(benchmark::State& s) {
  decode_bench(s, [] { return fsrv::codec::make_decoder(Base64Kind::kLibb64); });
}
void BM_DecodeFastScalar(benchmark::State& s) {
  decode_bench(s, [] { return fsrv::codec::make_fast_decoder(Base64Isa::kScalar); });
}
void BM_DecodeFastAvx2(benchmark::State& s) {
  if (!fsrv::codec::cpu_has_avx2()) return s.SkipWithError("no AVX2");
  decode_bench(s, [] { return fsrv::codec::make_fast_decoder(Base64Isa::kAvx2); });
}

#define CODEC_SIZES ->Arg(kSmall)->Arg(kLarge)->Unit(benchmark::kMicrosecond)
BENCHMARK(BM_Memcpy) CODEC_SIZES;
BENCHMARK(BM_EncodeOpenSsl) CODEC_SIZES;
BENCHMARK(BM_EncodeLibb64) CODEC_SIZES;
BENCHMARK(BM_EncodeFastScalar) CODEC_SIZES;
BENCHMARK(BM_EncodeFastAvx2) CODEC_SIZES;
BENCHMARK(BM_DecodeOpenSsl) CODEC_SIZES;
BENCHMARK(BM_DecodeLibb64) CODEC_SIZES;
BENCHMARK(BM_DecodeFastScalar) CODEC_SIZES;
BENCHMARK(BM_DecodeFastAvx2) CODEC_SIZES;

/// Console output as usual, plus the bytes/s of every run for the summary.
class SummaryReporter : public benchmark::ConsoleReporter {
 public:
  /// Colours only on a terminal, so piped output pastes cleanly.
  SummaryReporter() : ConsoleReporter(isatty(STDOUT_FILENO) ? OO_Color : OO_None) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) {
      auto it = r.counters.find("bytes_per_second");
      if (!r.error_occurred && it != r.counters.end()) rates_[r.benchmark_name()] = it->second;
    }
    ConsoleReporter::ReportRuns(runs);
  }

  /// Prints "<codec> <size>: X MB/s = Y x OpenSSL" for every fast/libb64 run.
  void PrintSummary() const {
    std::printf("\nSpeed-up over OpenSSL in this run (MB/s = 1e6 binary bytes/s):\n");
    for (const char* dir : {"Encode", "Decode"}) {
      for (int64_t size : {kSmall, kLarge}) {
        const std::string arg = "/" + std::to_string(size);
        auto base = rates_.find(std::string("BM_") + dir + "OpenSsl" + arg);
        if (base == rates_.end()) continue;
        std::printf("  %s %3lld MiB: OpenSSL %7.0f MB/s", dir, static_cast<long long>(size / kMiB),
                    base->second / 1e6);
        for (const char* impl : {"Libb64", "FastScalar", "FastAvx2"}) {
          auto it = rates_.find(std::string("BM_") + dir + impl + arg);
          if (it == rates_.end()) continue;
          std::printf(" | %s %7.0f MB/s %5.2fx", impl, it->second / 1e6, it->second / base->second);
        }
        std::printf("\n");
      }
    }
  }

 private:
  std::map<std::string, double> rates_;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  SummaryReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintSummary();
  benchmark::Shutdown();
  return 0;
}
