// Sha256x16: 16-lane SHA-256 with AVX-512 (FIPS 180-4 rounds, lanes are
// independent messages; the blocks are byte-swapped and transposed so that
// register w[t] holds message word t of every lane).
#include "kata_volume/verity/sha256_x16.h"

#include <algorithm>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_epi32(), which
// -O2 reports as "may be used uninitialized" (a known false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace guest_pull::verity {

#if defined(__x86_64__)
namespace {

constexpr size_t kShaBlock = 64;

// FIPS 180-4 section 4.2.2.
constexpr uint32_t kRoundConstants[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

#define GP_AVX512 __attribute__((target("avx512f,avx512bw")))

GP_AVX512 inline __m512i Xor3(__m512i a, __m512i b, __m512i c) {
  return _mm512_ternarylogic_epi32(a, b, c, 0x96);
}

// Loads one 64-byte block per lane as 16 big-endian words per lane and
// transposes them: w[t] = word t of lanes 0..15.
GP_AVX512 inline void LoadTransposed(const uint8_t* const block[16], __m512i w[16]) {
  const __m512i bswap = _mm512_broadcast_i32x4(
      _mm_set_epi8(12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3));
  __m512i r[16], t[16], u[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_shuffle_epi8(_mm512_loadu_si512(block[i]), bswap);
  // 32-bit interleave of row pairs, then 64-bit interleave of pair pairs:
  // 128-bit part q of u[4i + c] holds word 4q + c of rows 4i..4i+3.
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    u[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  // A 4x4 transpose of the 128-bit parts of u[c], u[4 + c], u[8 + c], u[12 + c].
  for (int c = 0; c < 4; ++c) {
    __m512i v0 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x44);
    __m512i v1 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xEE);
    __m512i v2 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x44);
    __m512i v3 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xEE);
    w[c] = _mm512_shuffle_i32x4(v0, v2, 0x88);
    w[4 + c] = _mm512_shuffle_i32x4(v0, v2, 0xDD);
    w[8 + c] = _mm512_shuffle_i32x4(v1, v3, 0x88);
    w[12 + c] = _mm512_shuffle_i32x4(v1, v3, 0xDD);
  }
}

// One compression of a 64-byte block in every lane.
GP_AVX512 void Compress(__m512i state[8], const uint8_t* const block[16]) {
  __m512i w[16];
  LoadTransposed(block, w);
  __m512i s[8];
  for (int i = 0; i < 8; ++i) s[i] = state[i];
  // Fully unrolled, so that the rotating roles of s[] are register renames.
#pragma GCC unroll 64
  for (int n = 0; n < 64; ++n) {
    if (n >= 16) {
      const __m512i w15 = w[(n - 15) & 15], w2 = w[(n - 2) & 15];
      const __m512i s0 =
          Xor3(_mm512_ror_epi32(w15, 7), _mm512_ror_epi32(w15, 18), _mm512_srli_epi32(w15, 3));
      const __m512i s1 =
          Xor3(_mm512_ror_epi32(w2, 17), _mm512_ror_epi32(w2, 19), _mm512_srli_epi32(w2, 10));
      w[n & 15] = _mm512_add_epi32(_mm512_add_epi32(w[n & 15], s0),
                                   _mm512_add_epi32(w[(n - 7) & 15], s1));
    }
    const __m512i a = s[(0 - n) & 7], b = s[(1 - n) & 7], c = s[(2 - n) & 7];
    const __m512i e = s[(4 - n) & 7], f = s[(5 - n) & 7], g = s[(6 - n) & 7];
    __m512i& d = s[(3 - n) & 7];
    __m512i& h = s[(7 - n) & 7];
    __m512i t1 = _mm512_add_epi32(
        h, _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(kRoundConstants[n])), w[n & 15]));
    t1 = _mm512_add_epi32(
        t1, Xor3(_mm512_ror_epi32(e, 6), _mm512_ror_epi32(e, 11), _mm512_ror_epi32(e, 25)));
    t1 = _mm512_add_epi32(t1, _mm512_ternarylogic_epi32(e, f, g, 0xCA));  // Ch
    const __m512i t2 =
        _mm512_add_epi32(Xor3(_mm512_ror_epi32(a, 2), _mm512_ror_epi32(a, 13), _mm512_ror_epi32(a, 22)),
                         _mm512_ternarylogic_epi32(a, b, c, 0xE8));  // Maj
    d = _mm512_add_epi32(d, t1);
    h = _mm512_add_epi32(t1, t2);  // the next round's a
  }
  for (int i = 0; i < 8; ++i) state[i] = _mm512_add_epi32(state[i], s[i]);
}

// Bytes [64 * index, 64 * index + 64) of the padded message
// tail || data || 0x80 || zeros || bit_length (big-endian), into `out`.
void AssembleBlock(const uint8_t* tail, size_t tail_size, const uint8_t* data, size_t data_size,
                   uint64_t bit_length, size_t index, size_t block_count, uint8_t* out) {
  const size_t pos = index * kShaBlock, end = pos + kShaBlock;
  std::memset(out, 0, kShaBlock);
  if (pos < tail_size) std::memcpy(out, tail + pos, std::min(end, tail_size) - pos);
  const size_t lo = std::max(pos, tail_size), hi = std::min(end, tail_size + data_size);
  if (lo < hi) std::memcpy(out + (lo - pos), data + (lo - tail_size), hi - lo);
  const size_t marker = tail_size + data_size;
  if (marker >= pos && marker < end) out[marker - pos] = 0x80;
  if (index + 1 == block_count) {
    for (int k = 0; k < 8; ++k) out[kShaBlock - 1 - k] = static_cast<uint8_t>(bit_length >> (8 * k));
  }
}

GP_AVX512 void HashLanes(const SHA256_CTX& prefix, const uint8_t* blocks, size_t block_size,
                         Sha256Digest out[16]) {
  const uint8_t* tail = reinterpret_cast<const uint8_t*>(prefix.data);
  const size_t tail_size = prefix.num;
  const uint64_t bit_length =
      ((static_cast<uint64_t>(prefix.Nh) << 32) | prefix.Nl) + uint64_t{block_size} * 8;
  const size_t block_count = (tail_size + block_size + 9 + kShaBlock - 1) / kShaBlock;

  __m512i state[8];
  for (int i = 0; i < 8; ++i) state[i] = _mm512_set1_epi32(static_cast<int>(prefix.h[i]));
  alignas(64) uint8_t edge[16][kShaBlock];
  const uint8_t* lane[16];
  for (size_t j = 0; j < block_count; ++j) {
    const size_t pos = j * kShaBlock;
    const bool inside = pos >= tail_size && pos + kShaBlock <= tail_size + block_size;
    for (size_t l = 0; l < 16; ++l) {
      const uint8_t* data = blocks + l * block_size;
      if (inside) {
        lane[l] = data + (pos - tail_size);
      } else {
        AssembleBlock(tail, tail_size, data, block_size, bit_length, j, block_count, edge[l]);
        lane[l] = edge[l];
      }
    }
    Compress(state, lane);
  }
  alignas(64) uint32_t words[8][16];
  for (int i = 0; i < 8; ++i) _mm512_store_si512(words[i], state[i]);
  for (size_t l = 0; l < 16; ++l) {
    for (int i = 0; i < 8; ++i) {
      const uint32_t v = words[i][l];
      out[l][4 * i] = static_cast<uint8_t>(v >> 24);
      out[l][4 * i + 1] = static_cast<uint8_t>(v >> 16);
      out[l][4 * i + 2] = static_cast<uint8_t>(v >> 8);
      out[l][4 * i + 3] = static_cast<uint8_t>(v);
    }
  }
}

}  // namespace

bool Sha256x16::Available() {
  static const bool available = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  }();
  return available;
}

void Sha256x16::HashBlocksAfter(const SHA256_CTX& prefix, const uint8_t* blocks,
                                size_t block_size, Sha256Digest out[kLanes]) {
  HashLanes(prefix, blocks, block_size, out);
}

#else  // !__x86_64__

bool Sha256x16::Available() { return false; }

void Sha256x16::HashBlocksAfter(const SHA256_CTX&, const uint8_t*, size_t, Sha256Digest*) {
  __builtin_trap();  // callers check Available()
}

#endif

}  // namespace guest_pull::verity
