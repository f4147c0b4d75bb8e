// march_views and shade_views on the CPU eight pixels at once (AVX2, FMA, F16C).
//
// Warp's CPU backend runs one ray a thread, so each ray's trilinear lookups, exponentials and compositing
// are scalar code. Here eight neighbouring pixels' rays (a row of an 8 x 8 tile) go together, one per
// lane of a 256-bit register, and each instruction does the eight. This file does what march.py's _step,
// _band and _band_samples do and march_colour._traced_ray's compositing; march_packets_colour.h the
// colour lookup at each ray's expected depth (march_colour._attributes), march_packets_shade.h the
// shading (march_colour._shade). test_march_packets holds them to Warp's kernels.
//
// Built at run time by march_packets.py (g++ -O3 -mavx2 -mfma -mf16c), loaded with ctypes.

#include <immintrin.h>
#include <math.h>
#include <stdint.h>

#include <algorithm>

extern "C" {

struct Grid {             // march._Volume
    const double *pairs;  // [D * H * W] (sdf[i], sdf[i + 1]) of the grid sdf [D * H * W], x fastest
    int32_t width, plane; // W, H * W
    float lo[3], hi[3];   // the box
    float scale[3];       // lattice steps per world unit
    float top[3];         // W - 1, H - 1, D - 1
    float slack[3];       // render.BOX_TOLERANCE of the half box, in lattice steps
    float margin;
};

struct March {            // march._March, with render.SECANT_REACH and SECANT_SLOPE
    float beta, inv_beta, enter_sdf, step_scale, exit_depth, secant_reach, secant_slope;
    int32_t max_steps, samples;
};

struct Views {            // the cameras of march_views
    const float *rotations;  // [N, 3, 3] camera to world, row-major
    const float *eyes;       // [N, 3]
    const float *intrinsics; // [N, 4] fx, fy, cx, cy
    int32_t width, height;
};

int facelab_packets_abi(void) { return 4; }  // march_packets.py checks it against its structures

// The grid of pairs Grid.pairs points at: pairs[i] = (sdf[i], sdf[i + 1]) for the n values of sdf (the
// last one's second is its own: no cell reads it)
void facelab_pairs(const float *sdf, int64_t n, float *pairs) {
    for (int64_t i = 0; i < n; ++i) {
        pairs[2 * i] = sdf[i];
        pairs[2 * i + 1] = sdf[i + 1 < n ? i + 1 : i];
    }
}

}  // extern "C"

namespace {

typedef float vf __attribute__((vector_size(32)));
typedef int32_t vi __attribute__((vector_size(32)));  // also the lanes' masks: -1 true, 0 false
constexpr int LANES = 8;

inline vf splat(float x) { return vf{x, x, x, x, x, x, x, x}; }
inline vi splati(int32_t x) { return vi{x, x, x, x, x, x, x, x}; }
inline vf vmin(vf a, vf b) { return a < b ? a : b; }
inline vf vmax(vf a, vf b) { return a > b ? a : b; }
inline vf vabs(vf a) { return a < 0.0f ? -a : a; }
inline bool any(vi m) { return _mm256_movemask_ps((__m256)m) != 0; }
inline bool all(vi m) { return _mm256_movemask_ps((__m256)m) == 0xff; }
inline vf lerp(vf a, vf b, vf t) { return a * (1.0f - t) + b * t; }  // Warp's lerp
inline vf clamp(vf x, vf lo, vf hi) { return vmin(vmax(x, lo), hi); }
inline vf vfloor(vf x) { return (vf)_mm256_floor_ps((__m256)x); }
inline vf vsqrt(vf x) { return (vf)_mm256_sqrt_ps((__m256)x); }
inline vi to_int(vf x) { return __builtin_convertvector(x, vi); }  // truncation
inline vf to_float(vi x) { return __builtin_convertvector(x, vf); }

// e^x, as Cephes' expf: within 1.01 ulp of exp over [-87, 0] (every float there checked); e^-87 below
inline vf vexp(vf x) {
    x = clamp(x, splat(-87.0f), splat(88.0f));
    vf n = vfloor(x * 1.44269504088896341f + 0.5f);
    x = x - n * 0.693359375f + n * 2.12194440e-4f;
    vf z = x * x;
    vf y = ((((1.9875691500e-4f * x + 1.3981999507e-3f) * x + 8.3334519073e-3f) * x + 4.1665795894e-2f) * x
            + 1.6666665459e-1f) * x + 5.0000001201e-1f;
    y = y * z + x + 1.0f;
    vi bits = (to_int(n) + 127) << 23;
    return y * (vf)bits;
}

struct Lattice {  // the grid's constants, splatted
    const double *pairs;
    int64_t row_step, plane_step;  // W, H * W
    vi width, plane, last[3];  // last: W - 2, H - 2, D - 2, the last cell's lower corner
    vf lo[3], scale[3], top[3], slack_lo[3], slack_hi[3], margin;
    explicit Lattice(const Grid &g) : pairs(g.pairs) {
        row_step = g.width;
        plane_step = g.plane;
        width = splati(g.width);
        plane = splati(g.plane);
        for (int k = 0; k < 3; ++k) {
            last[k] = splati((int32_t)g.top[k] - 1);
            lo[k] = splat(g.lo[k]);
            scale[k] = splat(g.scale[k]);
            top[k] = splat(g.top[k]);
            slack_lo[k] = splat(-g.slack[k]);
            slack_hi[k] = splat(g.top[k] + g.slack[k]);
        }
        margin = splat(g.margin);
    }
};

// Two floats in each of eight doubles (lanes 0-3 in a, 4-7 in b) -> the first of each and the second
inline void split(__m256 a, __m256 b, vf &first, vf &second) {
    const __m256 lo = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));  // lanes 0, 1, 4, 5, 2, 3, 6, 7
    const __m256 hi = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
    first = (vf)_mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(lo), _MM_SHUFFLE(3, 1, 2, 0)));
    second = (vf)_mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(hi), _MM_SHUFFLE(3, 1, 2, 0)));
}

struct Point { vf x, y, z; };  // eight points (or directions): their x, y and z

inline Point along(const Point &o, const Point &d, vf t) { return {o.x + t * d.x, o.y + t * d.y, o.z + t * d.z}; }

inline Point to_lattice(const Lattice &g, const Point &p) {  // world points -> the grid's lattice coordinates
    return {(p.x - g.lo[0]) * g.scale[0], (p.y - g.lo[1]) * g.scale[1], (p.z - g.lo[2]) * g.scale[2]};
}

inline Point lattice(const Lattice &g, const Point &o, const Point &d, vf t) { return to_lattice(g, along(o, d, t)); }

struct Cell { vi x0, y0, z0; vf tx, ty, tz; };  // a lattice cell's lower corner and the fractions within it

// march._cell: lattice coordinates f, clamped to [0, top] (grid_sample's border padding) -> the cell's
// lower corner (at most last, so that the upper one is in the grid) and the fractions within it
inline Cell cell(const Point &f, const vf top[3], const vi last[3]) {
    const vf x = clamp(f.x, splat(0.0f), top[0]), y = clamp(f.y, splat(0.0f), top[1]), z = clamp(f.z, splat(0.0f), top[2]);
    vi x0 = to_int(x), y0 = to_int(y), z0 = to_int(z);  // x >= 0: truncation is its floor
    x0 = x0 < last[0] ? x0 : last[0];
    y0 = y0 < last[1] ? y0 : last[1];
    z0 = z0 < last[2] ? z0 : last[2];
    return {x0, y0, z0, x - to_float(x0), y - to_float(y0), z - to_float(z0)};
}

// march._inside_sdf: the grid trilinear at lattice coordinates f, clamped to the grid
inline vf inside_sdf(const Lattice &g, const Point &f) {
    const Cell at = cell(f, g.top, g.last);
    // The cell's corners (x, x + 1) from the grid of pairs: four 64-bit loads a lane. (AVX2's gathers were
    // slower on a Zen 3: 1.3x where the grid is in the L1 cache, 2x where lookups miss it.)
    alignas(32) int32_t cell[LANES];
    *(vi *)cell = at.z0 * g.plane + at.y0 * g.width + at.x0;
    alignas(32) double corner[4][LANES];
    const double *row[4] = {g.pairs, g.pairs + g.row_step, g.pairs + g.plane_step, g.pairs + g.plane_step + g.row_step};
    for (int k = 0; k < LANES; ++k)
        for (int q = 0; q < 4; ++q) corner[q][k] = row[q][cell[k]];
    vf c[4];
    for (int q = 0; q < 4; ++q) {
        vf v0, v1;
        split(_mm256_load_ps((const float *)corner[q]), _mm256_load_ps((const float *)(corner[q] + 4)), v0, v1);
        c[q] = lerp(v0, v1, at.tx);
    }
    return lerp(lerp(c[0], c[1], at.ty), lerp(c[2], c[3], at.ty), at.tz);
}

// march._sdf: beyond the box's tolerance, |value| + margin
inline vf sdf(const Lattice &g, const Point &f) {
    vf value = inside_sdf(g, f);
    vi out = (f.x < g.slack_lo[0]) | (f.x > g.slack_hi[0]) | (f.y < g.slack_lo[1]) | (f.y > g.slack_hi[1])
             | (f.z < g.slack_lo[2]) | (f.z > g.slack_hi[2]);
    return out ? vabs(value) + g.margin : value;
}

struct Rays {  // eight rays and their sphere tracing: march._Tracer, a lane each
    Point o, d;
    vf t_start, t_end, t, t_prev, d_prev, enter, closest, t_closest, t_surface;
    vi has_prev, has_enter, crossed, finished;
};

// A view's pixels go in tiles of LANES x TILE_ROWS, tile after tile along the rows of tiles, each tile a
// row after another: a packet is one row of a tile. ``Slot`` j of the views is that order's place j; slots
// outside the image (where its size is no multiple of the tile's) are empty.
constexpr int TILE_ROWS = 8;  // 5-10% faster than rows of the image (a tile row after row)

// The eight rays of the packet at ``slot`` (a multiple of LANES): each lane's pixel (-1 for none), ray
// (march_colour._pixel_ray), box (march._box) and a fresh trace; empty lanes are finished at once.
Rays packet_rays(const Grid &g, const Views &v, int64_t slot, int64_t pixel[LANES]) {
    const int64_t tiles_x = (v.width + LANES - 1) / LANES, tiles_y = (v.height + TILE_ROWS - 1) / TILE_ROWS;
    const int64_t tile = slot / (LANES * TILE_ROWS), per_view = tiles_x * tiles_y;
    const int64_t view = tile / per_view, in_view = tile - view * per_view, ty = in_view / tiles_x;
    const int64_t row = ty * TILE_ROWS + (slot - tile * LANES * TILE_ROWS) / LANES;
    const int32_t x0 = (int32_t)(in_view - ty * tiles_x) * LANES;
    const float *c = v.intrinsics + 4 * view, *rot = v.rotations + 9 * view, *eye = v.eyes + 3 * view;
    const vi column = splati(x0) + vi{0, 1, 2, 3, 4, 5, 6, 7};
    const vi there = (column < v.width) & splati(row < v.height ? -1 : 0);
    for (int k = 0; k < LANES; ++k) pixel[k] = there[k] ? (view * v.height + row) * v.width + x0 + k : -1;
    const vf toward_x = (to_float(column) + 0.5f - c[2]) / c[0];
    const float toward_y = -(((float)row + 0.5f - c[3]) / c[1]);
    Rays r;
    vf *d[3] = {&r.d.x, &r.d.y, &r.d.z}, *o[3] = {&r.o.x, &r.o.y, &r.o.z};
    for (int a = 0; a < 3; ++a) *d[a] = rot[3 * a] * toward_x + rot[3 * a + 1] * toward_y - rot[3 * a + 2];
    const vf length = vsqrt(r.d.x * r.d.x + r.d.y * r.d.y + r.d.z * r.d.z);
    vf t_near = splat(0.0f), t_far = splat(1.0e30f);
    for (int a = 0; a < 3; ++a) {
        *d[a] = length > 1.0e-6f ? *d[a] / length : splat(0.0f);
        *o[a] = splat(eye[a]);
        const vf inv = 1.0f / (vabs(*d[a]) < 1.0e-9f ? splat(1.0e-9f) : *d[a]);
        const vf t0 = (g.lo[a] - eye[a]) * inv, t1 = (g.hi[a] - eye[a]) * inv;
        t_near = vmax(t_near, vmin(t0, t1));
        t_far = vmin(t_far, vmax(t0, t1));
    }
    r.t_start = t_near;
    r.t_end = there ? t_far : t_near;  // no ray: finished before its first step
    r.t = r.t_prev = r.t_start;
    r.d_prev = r.enter = splat(0.0f);
    r.closest = splat(1.0e30f);
    r.t_closest = r.t_surface = r.t_end;
    r.has_prev = r.has_enter = r.crossed = splati(0);
    r.finished = ~(r.t_start < r.t_end);
    return r;
}

// march._step, for the lanes not finished
void step(const Lattice &g, const March &m, Rays &r) {
    const vi active = ~r.finished;
    const vf t = r.t, enter_level = splat(m.enter_sdf * m.beta);
    const vf dist = inside_sdf(g, lattice(g, r.o, r.d, t));  // t_start <= t < t_end: in the box
    const vi below = dist < enter_level;
    const vi entering = below & ~r.has_enter & active;  // the band starts where the distance crosses enter_level
    if (any(entering)) {  // (here and below: divisions only where some lane needs them)
        const vf crossing = r.t_prev + (t - r.t_prev) * (r.d_prev - enter_level) / vmax(r.d_prev - dist, splat(1.0e-9f));
        r.enter = entering ? (r.has_prev ? crossing : t) : r.enter;
        r.has_enter |= entering;
    }
    const vi closer = (dist < r.closest) & active;
    r.closest = closer ? dist : r.closest;
    r.t_closest = closer ? t : r.t_closest;
    const vi crossed = dist < splat(0.05f * m.beta);
    vf step = m.step_scale * vmax(dist, splat(0.25f * m.beta));
    if (any(below & r.has_prev)) {  // render.sphere_trace's secant step
        const vf slope = (r.d_prev - dist) / vmax(t - r.t_prev, splat(1.0e-9f));
        const vi secant = below & r.has_prev & (slope > m.secant_slope);
        step = secant ? vmin(vmax(dist / slope, step), dist + m.secant_reach * m.beta) : step;
    }
    const vf t_next = t + step;
    const vi stop = active & (crossed | (t_next >= r.t_end));
    if (any(stop)) {
        const vi overshot = (dist < 0.0f) & r.has_prev;  // the crossing between the last two steps
        vf at = t;
        if (any(overshot & stop))
            at = overshot ? r.t_prev + (t - r.t_prev) * r.d_prev / vmax(r.d_prev - dist, splat(1.0e-9f)) : t;
        r.t_surface = stop ? (crossed ? at : r.t_closest) : r.t_surface;
        r.crossed = stop ? crossed : r.crossed;
        r.finished |= stop;
    }
    const vi go_on = active & ~stop;
    r.t_prev = go_on ? t : r.t_prev;
    r.d_prev = go_on ? dist : r.d_prev;
    r.has_prev |= go_on;
    r.t = go_on ? t_next : r.t;
}

// march._centroid: where a segment's weight lies, as a fraction of its length
inline vf centroid(vf optical, vf through) {
    const vf t2 = optical * optical;
    const vf series = 0.5f - optical * (1.0f / 12.0f - t2 * (1.0f / 720.0f - t2 / 30240.0f));
    const vf lit = 1.0f - through;
    const vf exact = (lit - optical * through) / (optical * lit);
    return optical < 0.2f ? series : exact;
}

// march._band and march._band_samples, composited: each ray's opacity and expected depth (hit false for
// rays that never come within the band).
void band(const Lattice &g, const March &m, const Rays &r, vi &hit, vf &total, vf &expected) {
    const vf t_surface = r.finished ? r.t_surface : r.t_closest;  // out of steps: what it found so far
    const vi crossed = r.finished & r.crossed;
    vf start = vmin(r.enter, t_surface);
    const vf half = 2.0f * (t_surface - start);
    vf stop = t_surface + m.exit_depth * m.beta;
    start = crossed ? start : vmax(t_surface - half, splat(0.0f));  // a grazing ray: a bell round its closest approach
    stop = crossed ? stop : t_surface + half;
    stop = vmin(stop, r.t_end);
    stop = vmax(stop, start + 1.0e-4f);
    hit = r.has_enter & (r.t_start < r.t_end);
    total = expected = splat(0.0f);
    if (!any(hit)) return;
    const vi in_box = start >= r.t_start;  // the band ends by t_end
    const vf length = (stop - start) / (float)m.samples;
    vf transmittance = splat(1.0f), last = splat(0.0f);
    for (int j = 0; j < m.samples; ++j) {
        const vf e0 = start + (float)j * length;
        const Point f = lattice(g, r.o, r.d, e0 + 0.5f * length);
        const vf s = all(in_box) ? inside_sdf(g, f) : sdf(g, f);
        const vf tail = 0.5f * vexp(-vabs(s) * m.inv_beta);
        const vf density = s < 0.0f ? 1.0f - tail : tail;  // sigma * beta
        const vf optical = density * m.inv_beta * length;
        const vf through = vexp(-optical);
        const vf weight = transmittance * (1.0f - through);
        last = e0 + length * centroid(optical, through);
        total += weight;
        expected += weight * last;
        transmittance *= through;
    }
    const vf rest = crossed ? transmittance : splat(0.0f);  // inside a closed head at the band's end: absorbed there
    total += rest;
    expected += rest * last;
}

}  // namespace

#include "march_packets_colour.h"
#include "march_packets_shade.h"

extern "C" {

// Slots start .. start + count - 1 of march_views' images (TILE_ROWS above; start a multiple of LANES),
// rendered: pixel i's (of view i / (width * height)) opacity into alpha[i], its albedo and unit normal
// (float16) into albedo[3i..3i+2] and normal[3i..3i+2], all three zero where its ray misses the band.
void facelab_render_views(const Grid *grid, const March *march, const Look *look, const Views *views, int64_t start,
                          int64_t count, float *alpha, uint16_t *albedo, uint16_t *normal) {
    const Lattice g(*grid);
    int64_t pixel[LANES];
    alignas(32) float out[7][LANES];
    for (int64_t slot = start; slot < start + count; slot += LANES) {
        Rays r = packet_rays(*grid, *views, slot, pixel);
        for (int k = 0; k < march->max_steps && !all(r.finished); ++k) step(g, *march, r);
        vi hit;
        vf total, expected;
        band(g, *march, r, hit, total, expected);
        Colour colour = {splat(0.0f), splat(0.0f), splat(0.0f)};
        Point n = {splat(0.0f), splat(0.0f), splat(0.0f)};
        if (any(hit)) {  // the colour where the ray's opacity is on average: its expected depth
            const vf depth = expected / vmax(total, splat(1.0e-12f));
            attributes(*grid, g, *look, along(r.o, r.d, depth), r.d, hit, colour, n);
        }
        const vf zero = splat(0.0f);
        *(vf *)out[0] = hit ? total : zero;
        const vf channels[6] = {colour.r, colour.g, colour.b, n.x, n.y, n.z};
        for (int c = 0; c < 6; ++c) *(vf *)out[1 + c] = hit ? channels[c] : zero;
        alignas(16) uint16_t half[6][LANES];
        for (int c = 0; c < 6; ++c)
            _mm_store_si128((__m128i *)half[c], _mm256_cvtps_ph(*(__m256 *)out[1 + c], _MM_FROUND_TO_NEAREST_INT));
        for (int k = 0; k < LANES; ++k) {
            if (pixel[k] < 0) continue;
            const int64_t i = pixel[k];
            alpha[i] = out[0][k];
            for (int c = 0; c < 3; ++c) {
                albedo[3 * i + c] = half[c][k];
                normal[3 * i + c] = half[3 + c][k];
            }
        }
    }
}

// The tiles march_views' slots go in (see TILE_ROWS), for march_packets.py: their width and height in pixels
void facelab_tile(int32_t *width, int32_t *height) {
    *width = LANES;
    *height = TILE_ROWS;
}

}  // extern "C"
