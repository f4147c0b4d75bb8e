// The colour of eight points at once: march_colour._attributes (HeadField.attributes), for
// march_packets.cpp, which includes this after its vector types and helpers. Each lane's texels and grid
// corners are read with plain loads, the arithmetic runs across the lanes.

extern "C" {

struct Look {                 // march_colour._Look
    const float *surface;     // [D, H, W, 4] normal (3) and visibility, on the distance grid's lattice
    const float *photo;       // [h, w, 3] linear RGB
    const float *fill;        // [fh, fw, 3]
    const float *overlay;     // [d, h, w, 4] albedo and coverage of added objects
    int32_t photo_size[2], fill_size[2], overlay_size[3];  // (h, w), (fh, fw), (d, h, w)
    int32_t has_overlay;
    float overlay_lo[3], overlay_hi[3];
    float to_photo[2];        // photo pixels per pixel of the input camera's frame
    float w2c[9], w2c_t[3], eye[3], focal[2], centre[2];  // the input camera
    float light[27];          // [9, 3] the photo's SH light, band factors folded in (march_colour._lights)
    float floor, stretch[2], fill_centre[3];
};

}  // extern "C"

namespace {

struct Colour { vf r, g, b; };

inline vf clamp01(vf x) { return clamp(x, splat(0.0f), splat(1.0f)); }
inline Colour mix(const Colour &a, const Colour &b, vf t) {
    return {lerp(a.r, b.r, t), lerp(a.g, b.g, t), lerp(a.b, b.b, t)};
}

inline Colour load3(const float *items, vi index) {
    alignas(32) float c[3][LANES];
    for (int k = 0; k < LANES; ++k)
        for (int q = 0; q < 3; ++q) c[q][k] = items[3 * (int64_t)index[k] + q];
    return {*(vf *)c[0], *(vf *)c[1], *(vf *)c[2]};
}

// march_colour._trilinear4: a 4-channel grid [d, h, w, 4] at lattice coordinates f, clamped to it. Each
// lane's corners are read and blended four channels at a time (a corner is 16 bytes), then the eight
// lanes' results are turned into one vector a channel.
inline void trilinear4(const float *grid, int32_t d, int32_t h, int32_t w, const Point &f, vf out[4]) {
    typedef float v4 __attribute__((vector_size(16)));
    const vf top[3] = {splat((float)(w - 1)), splat((float)(h - 1)), splat((float)(d - 1))};
    const vi last[3] = {splati(w - 2), splati(h - 2), splati(d - 2)};
    const Cell at = cell(f, top, last);
    const vf tx = at.tx, ty = at.ty, tz = at.tz;
    const vi b = (at.z0 * h + at.y0) * w + at.x0;  // x0 + 1 <= w - 1: the corners are b + {0, 1, w, w + 1, ...}
    const int64_t row = 4 * (int64_t)w, plane = 4 * (int64_t)h * w;
    alignas(16) float blended[LANES][4];
    for (int k = 0; k < LANES; ++k) {
        const float *c = grid + 4 * (int64_t)b[k];
        const v4 sx = {tx[k], tx[k], tx[k], tx[k]}, sy = {ty[k], ty[k], ty[k], ty[k]}, sz = {tz[k], tz[k], tz[k], tz[k]};
        auto at = [c](int64_t offset) { return (v4)_mm_loadu_ps(c + offset); };
        auto mix4 = [](v4 a, v4 e, v4 t) { return a * (1.0f - t) + e * t; };  // Warp's lerp
        const v4 c00 = mix4(at(0), at(4), sx), c01 = mix4(at(row), at(row + 4), sx);
        const v4 c10 = mix4(at(plane), at(plane + 4), sx), c11 = mix4(at(plane + row), at(plane + row + 4), sx);
        *(v4 *)blended[k] = mix4(mix4(c00, c01, sy), mix4(c10, c11, sy), sz);
    }
    __m128 lo[4], hi[4];  // lanes 0-3 and 4-7, a channel each once transposed
    for (int k = 0; k < 4; ++k) {
        lo[k] = _mm_load_ps(blended[k]);
        hi[k] = _mm_load_ps(blended[4 + k]);
    }
    _MM_TRANSPOSE4_PS(lo[0], lo[1], lo[2], lo[3]);
    _MM_TRANSPOSE4_PS(hi[0], hi[1], hi[2], hi[3]);
    for (int q = 0; q < 4; ++q) out[q] = (vf)_mm256_set_m128(hi[q], lo[q]);
}

// march_colour._bilinear: an image [h, w, 3] at pixel coordinates (x, y), pixel centres at integers,
// clamped to it; ``wrap``: x periodic
inline Colour bilinear(const float *image, int32_t h, int32_t w, vf x, vf y, bool wrap) {
    const vf yc = clamp(y, splat(0.0f), splat((float)(h - 1)));
    const vi y0 = to_int(vfloor(yc));
    const vi y1 = y0 + 1 < h - 1 ? y0 + 1 : splati(h - 1);
    const vf ty = yc - to_float(y0);
    const vf xc = wrap ? x : clamp(x, splat(0.0f), splat((float)(w - 1)));
    const vf xf = vfloor(xc);
    const vf tx = xc - xf;
    vi x0 = to_int(xf), x1 = x0 + 1;
    if (wrap) {  // x in [-0.5, w - 0.5): x0 in [-1, w - 1]
        x0 = x0 < 0 ? x0 + w : x0;
        x1 = x1 >= w ? x1 - w : x1;
    } else {
        x1 = x1 < w - 1 ? x1 : splati(w - 1);
    }
    return mix(mix(load3(image, y0 * w + x0), load3(image, y0 * w + x1), tx),
               mix(load3(image, y1 * w + x0), load3(image, y1 * w + x1), tx), ty);
}

// march_colour._atan2: within 1e-5 radians
inline vf atan2v(vf y, vf x) {
    const vf ax = vabs(x), ay = vabs(y);
    const vf r = vmin(ax, ay) / vmax(vmax(ax, ay), splat(1.0e-30f));
    const vf r2 = r * r;
    vf angle = r * (0.99986600f + r2 * (-0.33029950f + r2 * (0.18014100f + r2 * (-0.08513300f + r2 * 0.02083510f))));
    const float pi = 3.14159265358979f;
    angle = ay > ax ? 0.5f * pi - angle : angle;
    angle = x < 0.0f ? pi - angle : angle;
    return y < 0.0f ? -angle : angle;
}

// march_colour._irradiance under the SH light ``light`` [9, 3], channel c
inline vf irradiance(const float *light, const Point &n, int c) {
    const float *l = light + c;
    const vf x = n.x, y = n.y, z = n.z;
    vf e = 0.28209479f * l[0] + 0.48860251f * y * l[3] + 0.48860251f * z * l[6] + 0.48860251f * x * l[9];
    e += 1.09254843f * x * y * l[12] + 1.09254843f * y * z * l[15];
    e += 0.31539157f * (3.0f * z * z - 1.0f) * l[18] + 1.09254843f * x * z * l[21];
    return e + 0.54627422f * (x * x - y * y) * l[24];
}

// march_colour._attributes: the albedo and unit normal at points p seen along ``view`` (lanes in ``live``)
void attributes(const Grid &g, const Lattice &lat, const Look &a, const Point &p, const Point &view, vi live,
                Colour &albedo, Point &normal) {
    vf s[4];
    trilinear4(a.surface, (int32_t)g.top[2] + 1, (int32_t)g.top[1] + 1, g.width, to_lattice(lat, p), s);
    const vf length = vsqrt(vmax(s[0] * s[0] + s[1] * s[1] + s[2] * s[2], splat(1.0e-12f)));
    normal = {s[0] / length, s[1] / length, s[2] / length};
    vf visible = clamp01(s[3]);
    // photo_trust: how far the photo stretches here, seen along ``view``
    const Point to_camera = {a.eye[0] - p.x, a.eye[1] - p.y, a.eye[2] - p.z};
    const vf seen_in_photo = (normal.x * to_camera.x + normal.y * to_camera.y + normal.z * to_camera.z)
                             / vsqrt(vmax(to_camera.x * to_camera.x + to_camera.y * to_camera.y + to_camera.z * to_camera.z,
                                          splat(1.0e-12f)));
    const vf stretch = -(normal.x * view.x + normal.y * view.y + normal.z * view.z) / vmax(seen_in_photo, splat(1.0e-3f));
    visible = visible * clamp01((a.stretch[1] - stretch) / (a.stretch[1] - a.stretch[0]));
    visible = live ? visible : splat(0.0f);
    albedo = {splat(0.0f), splat(0.0f), splat(0.0f)};
    if (any(visible > 0.0f)) {  // photo_albedo: the photo where the input camera sees p, over the photo's own shading
        const float *m = a.w2c;
        const vf cx = m[0] * p.x + m[1] * p.y + m[2] * p.z + a.w2c_t[0];
        const vf cy = m[3] * p.x + m[4] * p.y + m[5] * p.z + a.w2c_t[1];
        const vf cz = m[6] * p.x + m[7] * p.y + m[8] * p.z + a.w2c_t[2];
        const vf depth = vmax(-cz, splat(1.0e-6f));
        const vf u = a.centre[0] + a.focal[0] * cx / depth, w = a.centre[1] - a.focal[1] * cy / depth;
        const Colour colour = bilinear(a.photo, a.photo_size[0], a.photo_size[1], u * a.to_photo[0] - 0.5f,
                                       w * a.to_photo[1] - 0.5f, false);
        const vi lit = visible > 0.0f;
        const vf zero = splat(0.0f);
        albedo.r = lit ? visible * (colour.r / vmax(irradiance(a.light, normal, 0), splat(a.floor))) : zero;
        albedo.g = lit ? visible * (colour.g / vmax(irradiance(a.light, normal, 1), splat(a.floor))) : zero;
        albedo.b = lit ? visible * (colour.b / vmax(irradiance(a.light, normal, 2), splat(a.floor))) : zero;
    }
    const vi filled = (visible < 1.0f) & live;
    if (any(filled)) {  // the fill: spherical_uv round fill_centre, the texture periodic across its width
        const vf rx = p.x - a.fill_centre[0], ry = p.y - a.fill_centre[1], rz = p.z - a.fill_centre[2];
        const vf azimuth = atan2v(rx, rz), elevation = atan2v(ry, vsqrt(rx * rx + rz * rz));
        const float fill_w = (float)a.fill_size[1], fill_h = (float)a.fill_size[0], pi = 3.14159265358979f;
        const vf fu = (azimuth / (2.0f * pi) + 0.5f) * fill_w, fv = (0.5f - elevation / pi) * fill_h;
        const Colour fill = bilinear(a.fill, a.fill_size[0], a.fill_size[1], fu - fill_w * vfloor(fu / fill_w) - 0.5f,
                                     fv - 0.5f, true);
        const vf rest = filled ? 1.0f - visible : splat(0.0f);
        albedo = {albedo.r + rest * fill.r, albedo.g + rest * fill.g, albedo.b + rest * fill.b};
    }
    if (a.has_overlay) {  // HeadField._overlay
        const vi in = live & (p.x >= a.overlay_lo[0]) & (p.y >= a.overlay_lo[1]) & (p.z >= a.overlay_lo[2])
                      & (p.x <= a.overlay_hi[0]) & (p.y <= a.overlay_hi[1]) & (p.z <= a.overlay_hi[2]);
        if (any(in)) {
            const int32_t *n = a.overlay_size;  // (d, h, w)
            const float top[3] = {(float)(n[2] - 1), (float)(n[1] - 1), (float)(n[0] - 1)};
            const float span[3] = {std::max(a.overlay_hi[0] - a.overlay_lo[0], 1.0e-9f),
                                   std::max(a.overlay_hi[1] - a.overlay_lo[1], 1.0e-9f),
                                   std::max(a.overlay_hi[2] - a.overlay_lo[2], 1.0e-9f)};
            vf over[4];
            trilinear4(a.overlay, n[0], n[1], n[2],
                       {(p.x - a.overlay_lo[0]) / span[0] * top[0], (p.y - a.overlay_lo[1]) / span[1] * top[1],
                        (p.z - a.overlay_lo[2]) / span[2] * top[2]}, over);
            const vf cover = in ? clamp01(over[3]) : splat(0.0f);
            albedo = {albedo.r + cover * (over[0] - albedo.r), albedo.g + cover * (over[1] - albedo.g),
                      albedo.b + cover * (over[2] - albedo.b)};
        }
    }
}

}  // namespace
