// Shading a G-buffer eight pixels at once: march_colour._shade (relight.LightTransfer.shade), for
// march_packets.cpp, which includes this after its vector helpers and march_packets_colour.h.
//
// sRGB encoding takes a power per channel; here the byte it rounds to comes from thresholds instead:
// byte v is the largest whose threshold (where the exact curve reaches (v - 0.5) / 255) the value reaches.
// A table over 4096 bins of [0, 1] gives each bin's first byte, and two comparisons finish it (a byte
// spans more than a bin everywhere, so no bin holds more than one threshold: srgb_tables checks).

#include <math.h>

namespace {

struct SrgbTables {
    static constexpr int BINS = 4096;
    float threshold[257];   // [v]: the least linear value that rounds to byte v or above; [0] -inf, [256] +inf
    int32_t first[BINS];    // [b]: the byte of the bin's lowest value, b / (BINS - 1)
    SrgbTables() {
        threshold[0] = -INFINITY;
        threshold[256] = INFINITY;
        for (int v = 1; v < 256; ++v) {
            const double s = (v - 0.5) / 255.0;  // lighting.linear_to_srgb's inverse
            const double exact = s <= 0.04045 ? s / 12.92 : pow((s + 0.055) / 1.055, 2.4);
            float up = (float)exact;  // the least float at or above it: a float x reaches one as it reaches the other
            if ((double)up < exact) up = nextafterf(up, INFINITY);
            threshold[v] = up;
        }
        int v = 0;
        for (int b = 0; b < BINS; ++b) {
            const float x = (float)b / (BINS - 1);
            while (threshold[v + 1] <= x) ++v;
            first[b] = v;
        }
    }
};

const SrgbTables &srgb_tables() {
    static const SrgbTables tables;  // built once, thread-safe (C++11)
    return tables;
}

// relight.to_uint8(lighting.linear_to_srgb(x)) of linear values x
inline vi srgb_byte(vf x) {
    const SrgbTables &t = srgb_tables();
    x = clamp01(x);
    const vi bin = to_int(x * (float)(SrgbTables::BINS - 1));
    vi v = (vi)_mm256_i32gather_epi32(t.first, (__m256i)bin, 4);
    for (int k = 0; k < 2; ++k) {
        const vf next = (vf)_mm256_i32gather_ps(t.threshold, (__m256i)(v + 1), 4);
        v -= (vi)(x >= next);  // a true lane is -1
    }
    return v;
}

// Channel c of a [.., 3] float16 array at pixels first .. first + lanes - 1, as floats (0 in the lanes past)
inline vf halves(const uint16_t *values, int64_t first, int lanes, int c) {
    alignas(16) uint16_t h[LANES] = {};
    for (int k = 0; k < lanes; ++k) h[k] = values[3 * (first + k) + c];
    return (vf)_mm256_cvtph_ps(_mm_load_si128((const __m128i *)h));
}

}  // namespace

extern "C" {

// Pixels start .. start + count - 1 of views [N, H, W] (pixel i of view i / pixels), shaded: albedo times
// max(irradiance of the normal under the view's SH light lights[view] ([9, 3], band factors folded in), 0),
// at the pixel's opacity over the linear background colour, as display bytes into out[3i .. 3i + 2].
void facelab_shade_views(const float *alpha, const uint16_t *albedo, const uint16_t *normal, const float *lights,
                         int64_t pixels, const float *background, int64_t start, int64_t count, uint8_t *out) {
    const int64_t end = start + count;
    for (int64_t first = start; first < end;) {
        const int64_t view = first / pixels, stop = std::min(end, (view + 1) * pixels);
        const float *light = lights + 27 * view;
        for (; first < stop; first += LANES) {
            const int lanes = (int)std::min<int64_t>(stop - first, LANES);
            alignas(32) float opacity[LANES] = {};
            for (int k = 0; k < lanes; ++k) opacity[k] = alpha[first + k];
            const vf o = *(vf *)opacity;
            const Point n = {halves(normal, first, lanes, 0), halves(normal, first, lanes, 1),
                             halves(normal, first, lanes, 2)};
            const vi lit = o > 0.0f;
            vf linear[3];
            for (int c = 0; c < 3; ++c) {
                const vf shaded = vmax(o * halves(albedo, first, lanes, c) * irradiance(light, n, c), splat(0.0f));
                linear[c] = (1.0f - o) * background[c] + (lit ? shaded : splat(0.0f));
            }
            // lighting.to_display: brighter than white rolls off towards white
            const vf peak = vmax(vmax(linear[0], linear[1]), linear[2]);
            const vi over = peak > 1.0f;
            const vf towards_white = clamp01((peak - 1.0f) / vmax(peak, splat(1.0e-6f)));
            alignas(32) int32_t bytes[3][LANES];
            for (int c = 0; c < 3; ++c) {
                const vf scaled = linear[c] / peak;
                *(vi *)bytes[c] = srgb_byte(over ? scaled + towards_white * (1.0f - scaled) : linear[c]);
            }
            for (int k = 0; k < lanes; ++k)
                for (int c = 0; c < 3; ++c) out[3 * (first + k) + c] = (uint8_t)bytes[c][k];
        }
        first = stop;
    }
}

// srgb_byte of n values (for the tests)
void facelab_srgb_bytes(const float *values, int64_t n, uint8_t *out) {
    for (int64_t i = 0; i < n; ++i) out[i] = (uint8_t)srgb_byte(splat(values[i]))[0];
}

}  // extern "C"
