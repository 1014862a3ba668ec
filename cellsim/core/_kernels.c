/*
 * cellsim analysis kernels: XDATCAR coordinate parsing, pair-distance histograms, neighbour counts, the
 * per-step displacement statistics of the time-step check, the unwrapped paths of the metal diagnostics and the
 * occupied fraction of the c axis.
 *
 * Why C: on a 304-atom, 10,000-frame slab trajectory the vectorised NumPy reference takes 3.4 s for the
 * In-S/In-Cl/P-S RDFs alone and a float parse of the file 0.45 s (../shared/DESIGN.md, measured here);
 * the target for the whole `cellsim analyze` is 1 s. These two loops are compiled once per machine
 * (cellsim/core/_native.py) and fall back to NumPy when no C compiler is available.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const double POW10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                               1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Parse one Fortran/C float at p (< e). A sign right after a digit ends the previous number, so
 * run-together fields such as "-0.63265286-0.11227753" read as two numbers. Returns the end or NULL. */
static const char *parse_num(const char *p, const char *e, double *out) {
    int neg = 0, nd = 0, frac = 0;
    uint64_t mant = 0;
    int extra_exp = 0;
    if (p < e && (*p == '-' || *p == '+')) {
        neg = (*p == '-');
        p++;
    }
    while (p < e && *p >= '0' && *p <= '9') {
        if (nd < 19) mant = mant * 10 + (uint64_t)(*p - '0');
        else extra_exp++;
        nd++;
        p++;
    }
    if (p < e && *p == '.') {
        p++;
        while (p < e && *p >= '0' && *p <= '9') {
            if (nd < 19) {
                mant = mant * 10 + (uint64_t)(*p - '0');
                frac++;
            }
            nd++;
            p++;
        }
    }
    if (nd == 0) return NULL;
    int ex = 0;
    if (p < e && (*p == 'e' || *p == 'E' || *p == 'd' || *p == 'D')) {
        const char *q = p + 1;
        int eneg = 0, end = 0;
        if (q < e && (*q == '-' || *q == '+')) {
            eneg = (*q == '-');
            q++;
        }
        while (q < e && *q >= '0' && *q <= '9') {
            if (ex < 100000) ex = ex * 10 + (*q - '0'); /* saturate: no signed overflow on long exponents */
            q++;
            end++;
        }
        if (end == 0) return NULL;
        if (eneg) ex = -ex;
        p = q;
    }
    int e10 = ex + extra_exp - frac;
    double v = (double)mant;
    /* exact for mant < 2^53 and |e10| <= 22: one correctly rounded operation, as strtod; a zero mantissa
     * stays zero (0 * pow(10, 999) would be NaN) */
    if (mant == 0) {
        v = 0.0;
    } else if (e10 < 0) {
        if (-e10 <= 22) v /= POW10[-e10];
        else v *= pow(10.0, (double)e10);
    } else if (e10 > 0) {
        if (e10 <= 22) v *= POW10[e10];
        else v *= pow(10.0, (double)e10);
    }
    *out = neg ? -v : v;
    return p;
}

/* Minimum-image wrap of a fractional separation. Inputs in [0, 1) give d in (-1, 1): a compare and a
 * subtraction, no libm call (nearbyint is not inlined at -O2/-O3 without SSE4.1, measured 8 ns/pair);
 * anything else takes the general path. Ties (|d| = 1/2) stay, as with rint's round-half-even. */
static inline double wrap(double d) {
    if (d > -1.0 && d < 1.0) return d - (double)(d > 0.5) + (double)(d < -0.5);
    return d - nearbyint(d);
}

/* The same for inputs known to be in (-1, 1) (coordinates in [0, 1)): a truncating conversion instead of a
 * compare, so the loop has no control flow and vectorises (ties at exactly 1/2 go to -1/2, same length
 * under minimum image). */
static inline double wrap_unit(double d) { return d - ((double)(int)(d + 1.5) - 1.0); }

static inline int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

/* Longest line accepted in the body: bounds the memory a file without line ends can make the reader hold. */
#define MAX_LINE 4096

/* The line starting at p: 0 and *le at its '\n'; 1 when it has no '\n' yet (a line is whole only with its
 * line end, so a cut-off last line never counts); 2 when it is longer than MAX_LINE. */
static int next_line(const char *p, const char *e, const char **le) {
    size_t avail = (size_t)(e - p);
    const char *nl = memchr(p, '\n', avail < MAX_LINE + 1 ? avail : MAX_LINE + 1);
    if (nl) {
        *le = nl;
        return 0;
    }
    return avail > MAX_LINE ? 2 : 1;
}

/* The end of a species label at p (an element symbol, maybe with a charge: "Li", "S", "Fe2+", "O2-"), or
 * NULL. pymatgen's Trajectory.write_Xdatcar writes one after each atom's coordinates. */
static const char *skip_label(const char *p, const char *le) {
    if (p >= le || *p < 'A' || *p > 'Z') return NULL;
    p++;
    if (p < le && *p >= 'a' && *p <= 'z') p++;
    const char *q = p;
    while (q < le && ((*q >= '0' && *q <= '9') || *q == '.')) q++;
    if (q < le && (*q == '+' || *q == '-')) return q + 1;
    return q == p ? p : NULL; /* digits without a sign ("Li2") are no label */
}

/* VASP's own layout of an XDATCAR line, "  0.35292678  0.49933598 -0.48047696": three 12-character fields of a
 * blank, a blank or '-', one digit, '.' and eight digits, nothing else. Read from the known offsets: 0, or -1
 * when the line has another layout (parse_xyz then reads it the general way). The arithmetic is parse_num's
 * (the digits as one integer, one division by 1e8), so the doubles are the same to the bit. The eight decimals
 * are checked and combined as one 64-bit word. The parse of the benchmark's 112 MB: 110 ms the general way,
 * 55 ms digit by digit from the offsets, 40 ms with the word. */
static int parse_xyz_fixed(const char *p, const char *le, double *xyz) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
    return -1; /* the word arithmetic below reads the first character from the lowest byte */
#endif
    if (le - p != 36) return -1;
    for (int k = 0; k < 3; k++) {
        const char *f = p + 12 * k;
        if (f[0] != ' ' || (f[1] != ' ' && f[1] != '-') || f[3] != '.') return -1;
        const unsigned d0 = (unsigned)(unsigned char)f[2] - (unsigned)'0';
        /* the eight decimals as one little-endian word: all digits when every byte is 0x30-0x39 */
        uint64_t w;
        memcpy(&w, f + 4, 8);
        if (d0 > 9 || (w & 0xF0F0F0F0F0F0F0F0ULL) != 0x3030303030303030ULL ||
            ((w + 0x0606060606060606ULL) & 0xF0F0F0F0F0F0F0F0ULL) != 0x3030303030303030ULL)
            return -1;
        /* digit values, then pairs, fours and all eight combined (the first character in the lowest byte) */
        w -= 0x3030303030303030ULL;
        w = (w * 10 + (w >> 8)) & 0x00FF00FF00FF00FFULL;
        w = (w * 100 + (w >> 16)) & 0x0000FFFF0000FFFFULL;
        w = (w * 10000 + (w >> 32)) & 0xFFFFFFFFULL;
        const uint64_t mant = (uint64_t)d0 * 100000000ULL + w;
        const double v = (double)mant / POW10[8];
        xyz[k] = f[1] == '-' ? -v : v;
    }
    return 0;
}

/* Exactly three finite numbers in [p, le), optionally followed (after a blank) by one species label: 0; 2
 * when the line has another form (extra or missing numbers, a glued or unknown token, so a corrupted byte
 * cannot shift columns silently); 3 when a number is infinite (1e400, 0.6D64104). */
static int parse_xyz(const char *p, const char *le, double *xyz) {
    if (parse_xyz_fixed(p, le, xyz) == 0) return 0;
    for (int k = 0; k < 3; k++) {
        while (p < le && is_blank(*p)) p++;
        const char *q = parse_num(p, le, &xyz[k]);
        if (!q) return 2;
        p = q;
        /* a number must be followed by a blank, a sign (run-together field) or the line end */
        if (p < le && !is_blank(*p) && *p != '-' && *p != '+') return 2;
    }
    const char *after = p;
    while (p < le && is_blank(*p)) p++;
    if (p != le && p != after) {
        p = skip_label(p, le);
        if (!p) return 2;
        while (p < le && is_blank(*p)) p++;
    }
    if (p != le) return 2;
    for (int k = 0; k < 3; k++)
        if (!isfinite(xyz[k])) return 3;
    return 0;
}

/* The number after '=' of a configuration line: >= 0; -1 without '='; -2 when '=' is not followed by one
 * integer (of at most 18 digits) and blanks only. */
static long config_number(const char *q, const char *le) {
    const char *eq = memchr(q, '=', (size_t)(le - q));
    if (!eq) return -1;
    const char *r = eq + 1;
    while (r < le && is_blank(*r)) r++;
    long v = 0;
    int nd = 0;
    while (r < le && *r >= '0' && *r <= '9') {
        if (nd < 18) v = v * 10 + (*r - '0');
        nd++;
        r++;
    }
    while (r < le && is_blank(*r)) r++;
    if (nd == 0 || nd > 18 || r != le) return -2;
    return v;
}

/*
 * Parse up to max_frames frames from buf[pos:len]. A frame is one configuration line (e.g.
 * "Direct configuration=     5": not blank, its first non-blank character does not start a number)
 * followed by natoms lines of exactly three finite numbers (and perhaps a species label), every line ended
 * by '\n'.
 * Returns the number of whole frames written to out (max_frames*natoms*3 doubles) and their configuration
 * numbers to config (see config_number). *consumed is the offset after the last whole frame. On a malformed
 * line, *err_offset is its start and *err_kind is 1 (configuration line expected), 2 (three numbers
 * expected), 3 (a number is not finite) or 4 (line longer than MAX_LINE); otherwise *err_offset = -1.
 */
long parse_frames(const char *buf, long len, long pos, long natoms, long max_frames, double *out, long *config,
                  long *consumed, long *err_offset, int *err_kind) {
    const char *e = buf + len;
    const char *p = buf + pos;
    const char *le;
    long nf = 0;
    int st;
    *err_offset = -1;
    *err_kind = 0;
    *consumed = pos;
    while (nf < max_frames && p < e) {
        st = next_line(p, e, &le);
        if (st == 1) return nf;
        if (st == 2) goto fail4;
        const char *q = p;
        while (q < le && is_blank(*q)) q++;
        if (q == le || (*q >= '0' && *q <= '9') || *q == '-' || *q == '+' || *q == '.') {
            *err_offset = (long)(p - buf);
            *err_kind = 1;
            return nf;
        }
        long cfg = config_number(q, le);
        p = le + 1;
        double *dst = out + nf * natoms * 3;
        for (long a = 0; a < natoms; a++) {
            if (p >= e) return nf;
            st = next_line(p, e, &le);
            if (st == 1) return nf;
            if (st == 2) goto fail4;
            int bad = parse_xyz(p, le, dst + 3 * a);
            if (bad) {
                *err_offset = (long)(p - buf);
                *err_kind = bad;
                return nf;
            }
            p = le + 1;
        }
        config[nf] = cfg;
        nf++;
        *consumed = (long)(p - buf);
    }
    return nf;
fail4:
    *err_offset = (long)(p - buf);
    *err_kind = 4;
    return nf;
}

/* Minimum-image histogram of one A atom (x0, x1, x2) against the B atoms jj in [j0, j1); r2s: scratch. */
static inline int64_t mic_row(const double *bx, const double *by, const double *bz, double *r2s, long j0, long j1,
                              double x0, double x1, double x2, const double *H, double rmax2, double bc2,
                              double inv_dr, long nbins, int64_t *hist) {
    int64_t nbond = 0;
    for (long jj = j0; jj < j1; jj++) {
        double d0 = wrap_unit(bx[jj] - x0), d1 = wrap_unit(by[jj] - x1), d2 = wrap_unit(bz[jj] - x2);
        double x = d0 * H[0] + d1 * H[3] + d2 * H[6];
        double y = d0 * H[1] + d1 * H[4] + d2 * H[7];
        double z = d0 * H[2] + d1 * H[5] + d2 * H[8];
        r2s[jj] = x * x + y * y + z * z;
    }
    /* the distances below rmax moved to the front of r2s without a branch (m <= jj: in place), then binned: most
     * scanned pairs lie beyond rmax in no predictable order (on the benchmark slab ~500 of ~4000 a frame), and a
     * branch on each cost more than the binning: the kernel alone 0.83-0.92 x, paired, the same counts */
    long m = j0;
    for (long jj = j0; jj < j1; jj++) {
        const double r2 = r2s[jj];
        r2s[m] = r2;
        m += (r2 < rmax2);
    }
    for (long t = j0; t < m; t++) {
        const double r2 = r2s[t];
        const long k = (long)(sqrt(r2) * inv_dr);
        if (k < nbins) hist[k]++;
        nbond += (r2 < bc2);
    }
    return nbond;
}

/* Bin of a fractional c in [0, 1] among nc: floor(c * nc), the top bin also holding c = 1. */
static inline long c_bin(double c, long nc) {
    const long b = (long)(c * (double)nc);
    return b < nc ? b : nc - 1;
}

/* One image of a pair, separation (e0, e1, e2) in fractions of the cell: counted into hist below rmax; 1 when it
 * is a bond (closer than the bond cutoff). */
static inline int image_pair(double e0, double e1, double e2, const double *H, double rmax2, double bc2,
                             double inv_dr, long nbins, int64_t *hist) {
    const double x = e0 * H[0] + e1 * H[3] + e2 * H[6];
    const double y = e0 * H[1] + e1 * H[4] + e2 * H[7];
    const double z = e0 * H[2] + e1 * H[5] + e2 * H[8];
    const double r2 = x * x + y * y + z * z;
    if (r2 >= rmax2) return 0;
    const long k = (long)(sqrt(r2) * inv_dr);
    if (k < nbins) hist[k]++;
    return r2 < bc2;
}

/* The same with periodic images along a and b only (n0 in [-m0, m0], n1 in [-m1, m1], none along c): a cell
 * thinner than 2 rmax in the plane, such as the bundled 14.5 A interfaces. An image shift in the plane leaves
 * the separation along c* as it is, so the window along c holds for every image. The arithmetic is that of the
 * general loop in pair_histogram (Li-S of the Li/Li6PS5Cl trajectory, 198 x 80 atoms: 440 -> 190 us a frame). */
static inline int64_t img_row(const double *bx, const double *by, const double *bz, long j0, long j1, double x0,
                              double x1, double x2, const double *H, long m0, long m1, double rmax2, double bc2,
                              double inv_dr, long nbins, int64_t *hist) {
    int64_t nbond = 0;
    for (long jj = j0; jj < j1; jj++) {
        double d0 = wrap(bx[jj] - x0), d1 = wrap(by[jj] - x1), d2 = wrap(bz[jj] - x2);
        for (long n0 = -m0; n0 <= m0; n0++)
            for (long n1 = -m1; n1 <= m1; n1++)
                nbond += image_pair(d0 + n0, d1 + n1, d2, H, rmax2, bc2, inv_dr, nbins, hist);
    }
    return nbond;
}

/*
 * Histogram of A-B distances below rmax, frame by frame, under periodic boundaries.
 * frac: (nframes, natoms, 3) fractional coordinates, any range (wrapped into [0, 1) as x - floor(x), like the
 * NumPy path); cells: (nframes or 1, 3, 3) rows a, b, c.
 * images[3]: how many periodic images to scan on each side along a, b, c (0: minimum image, exact when
 * rmax < half the smallest cell width). same != 0: A == B, unordered pairs i < j (plus an atom with its
 * own images when images > 0). hist (nbins) is accumulated over frames; bonds[f] counts pairs with
 * d < bond_cut in frame f. work: 7 * nb doubles; iwork: 3 * nb + 18 longs (scratch of the bins along c).
 */
void pair_histogram(const double *frac, long nframes, long natoms, const double *cells, int cell_per_frame,
                    const long *ia, long na, const long *ib, long nb, int same, double rmax, double dr, long nbins,
                    const long *images, double bond_cut, int64_t *hist, int64_t *bonds, double *work, long *iwork) {
    const double rmax2 = rmax * rmax, bc2 = bond_cut * bond_cut, inv_dr = 1.0 / dr;
    const long m0 = images[0], m1 = images[1], m2 = images[2];
    const int mic = (m0 == 0 && m1 == 0 && m2 == 0);
    /* work: the B coordinates as separate x, y, z arrays (so the distance loop vectorises), the squared
     * distances of one A atom to every B atom, and the B coordinates in the order of their bins along c */
    double *bx = work, *by = work + nb, *bz = work + 2 * nb, *r2s = work + 3 * nb;
    double *tx = work + 4 * nb, *ty = work + 5 * nb, *tz = work + 6 * nb;
    long *bin = iwork, *first = iwork + nb, *cursor = iwork + 2 * nb + 9;
    for (long f = 0; f < nframes; f++) {
        const double *X = frac + f * natoms * 3;
        const double *H = cells + (cell_per_frame ? f * 9 : 0);
        int64_t nbond = 0;
        for (long jj = 0; jj < nb; jj++) {
            const double *xj = X + 3 * ib[jj];
            bx[jj] = xj[0] - floor(xj[0]);
            by[jj] = xj[1] - floor(xj[1]);
            bz[jj] = xj[2] - floor(xj[2]);
        }
        /* half-width in fractional c of the slab of B atoms that can lie within rmax of an A atom: rmax over the
         * cell's height along c* (volume / |a x b|), widened by a relative 1e-9 so rounding never drops a pair */
        double slab_w = 1.0;
        if (!same && m2 == 0) {
            const double cx = H[1] * H[5] - H[2] * H[4], cy = H[2] * H[3] - H[0] * H[5], cz = H[0] * H[4] - H[1] * H[3];
            const double area = sqrt(cx * cx + cy * cy + cz * cz), vol = fabs(cx * H[6] + cy * H[7] + cz * H[8]);
            if (area > 0.0 && vol > 0.0) slab_w = rmax / (vol / area) * (1.0 + 1e-9) + 1e-12;
        }
        /* Only B atoms whose fractional c lies within slab_w of the A atom's (on the circle) can be closer than
         * rmax: r >= |dc| * (cell height along c*). The B atoms are binned along c (nc bins, a counting sort,
         * linear whatever their order) and an A atom scans the bins within k of its own, k / nc >= slab_w with a
         * relative margin of 1e-6, so no pair within rmax is ever skipped; the extra B atoms scanned lie beyond
         * rmax and are not counted. Measured on the benchmark slab, same counts: 14.5 us a frame for its three
         * pairs with the exact window over atoms sorted along c (an insertion sort from the previous frame's
         * order and binary searches), 13.9 with exact edges found in sorted bins, 9.7-10.5 with these whole bins. */
        long nc = slab_w < 0.5 ? (long)(4.0 / (slab_w * (1.0 + 1e-6))) : 0;
        if (nc > nb + 8) nc = nb + 8;
        const long k = nc > 0 ? (long)ceil(slab_w * (1.0 + 1e-6) * (double)nc) : 0;
        if (nc > 0 && 2 * k + 1 < nc) {
            for (long b = 0; b <= nc; b++) first[b] = 0;
            for (long jj = 0; jj < nb; jj++) {
                const long b = c_bin(bz[jj], nc);
                bin[jj] = b;
                first[b + 1]++;
            }
            for (long b = 0; b < nc; b++) {
                first[b + 1] += first[b];
                cursor[b] = first[b];
            }
            for (long jj = 0; jj < nb; jj++) {
                const long to = cursor[bin[jj]]++;
                tx[to] = bx[jj];
                ty[to] = by[jj];
                tz[to] = bz[jj];
            }
            for (long ii = 0; ii < na; ii++) {
                const double *xi = X + 3 * ia[ii];
                const double x0 = xi[0] - floor(xi[0]), x1 = xi[1] - floor(xi[1]), x2 = xi[2] - floor(xi[2]);
                const long b = c_bin(x2, nc);
                const long lo = b - k, hi = b + k; /* bins lo..hi, on the circle */
                long r0, r1, r2 = 0, r3 = 0;       /* B ranges [r0, r1) and [r2, r3) of the binned order */
                if (lo < 0) {
                    r0 = 0;
                    r1 = first[hi + 1];
                    r2 = first[lo + nc];
                    r3 = nb;
                } else if (hi >= nc) {
                    r0 = first[lo];
                    r1 = nb;
                    r3 = first[hi - nc + 1];
                } else {
                    r0 = first[lo];
                    r1 = first[hi + 1];
                }
                if (mic) {
                    nbond += mic_row(tx, ty, tz, r2s, r0, r1, x0, x1, x2, H, rmax2, bc2, inv_dr, nbins, hist);
                    if (r3 > r2)
                        nbond += mic_row(tx, ty, tz, r2s, r2, r3, x0, x1, x2, H, rmax2, bc2, inv_dr, nbins, hist);
                } else {
                    nbond += img_row(tx, ty, tz, r0, r1, x0, x1, x2, H, m0, m1, rmax2, bc2, inv_dr, nbins, hist);
                    if (r3 > r2)
                        nbond += img_row(tx, ty, tz, r2, r3, x0, x1, x2, H, m0, m1, rmax2, bc2, inv_dr, nbins, hist);
                }
            }
            if (bonds) bonds[f] += nbond;
            continue;
        }
        for (long ii = 0; ii < na; ii++) {
            const double *xi = X + 3 * ia[ii];
            const double x0 = xi[0] - floor(xi[0]), x1 = xi[1] - floor(xi[1]), x2 = xi[2] - floor(xi[2]);
            if (mic) {
                const long j0 = same ? ii + 1 : 0;
                nbond += mic_row(bx, by, bz, r2s, j0, nb, x0, x1, x2, H, rmax2, bc2, inv_dr, nbins, hist);
                continue;
            }
            for (long jj = same ? ii : 0; jj < nb; jj++) {
                const int self = same && (jj == ii);
                double d0 = wrap(bx[jj] - x0), d1 = wrap(by[jj] - x1), d2 = wrap(bz[jj] - x2);
                for (long n0 = -m0; n0 <= m0; n0++)
                    for (long n1 = -m1; n1 <= m1; n1++)
                        for (long n2 = -m2; n2 <= m2; n2++) {
                            if (self) {
                                /* an atom with its own images: each +/- image pair once, never itself */
                                if (n0 < 0 || (n0 == 0 && (n1 < 0 || (n1 == 0 && n2 <= 0)))) continue;
                            }
                            nbond += image_pair(d0 + n0, d1 + n1, d2 + n2, H, rmax2, bc2, inv_dr, nbins, hist);
                        }
            }
        }
        if (bonds) bonds[f] += nbond;
    }
}

/*
 * Neighbour counts with periodic images: out[f * nc + c] += number of ligands il[*] within cutoff of centre
 * ic[c] in frame f, every image in images[3] on each side (an atom is never its own neighbour at zero shift).
 * frac (nframes, natoms, 3) in any range; cells (nframes or 1, 3, 3) rows a, b, c.
 */
void neighbour_counts(const double *frac, long nframes, long natoms, const double *cells, int cell_per_frame,
                      const long *ic, long nc, const long *il, long nl, double cutoff, const long *images,
                      int64_t *out) {
    const double cut2 = cutoff * cutoff;
    const long m0 = images[0], m1 = images[1], m2 = images[2];
    /* minimum image: the ligands' coordinates copied apart (x, y, z) so the loop over them has no gather and
     * vectorises; d - rint(d) is what wrap() computes, to the bit. In-In (3.8 A) and P-S (2.3 A) counts of the
     * benchmark slab over 2000 frames: 271 -> 30 ms, the same counts. Without the memory, the general loop. */
    double *lx = (m0 == 0 && m1 == 0 && m2 == 0 && nl > 0) ? malloc(sizeof(double) * 3 * (size_t)nl) : NULL;
    for (long f = 0; f < nframes; f++) {
        const double *X = frac + f * natoms * 3;
        const double *H = cells + (cell_per_frame ? f * 9 : 0);
        if (lx) {
            double *ly = lx + nl, *lz = lx + 2 * nl;
            for (long l = 0; l < nl; l++) {
                const double *xj = X + 3 * il[l];
                lx[l] = xj[0];
                ly[l] = xj[1];
                lz[l] = xj[2];
            }
            for (long c = 0; c < nc; c++) {
                const double *xi = X + 3 * ic[c];
                const double x0 = xi[0], x1 = xi[1], x2 = xi[2];
                const long me = ic[c];
                int64_t n = 0;
                for (long l = 0; l < nl; l++) {
                    const double d0 = lx[l] - x0, d1 = ly[l] - x1, d2 = lz[l] - x2;
                    const double e0 = d0 - rint(d0), e1 = d1 - rint(d1), e2 = d2 - rint(d2);
                    const double x = e0 * H[0] + e1 * H[3] + e2 * H[6];
                    const double y = e0 * H[1] + e1 * H[4] + e2 * H[7];
                    const double z = e0 * H[2] + e1 * H[5] + e2 * H[8];
                    n += (x * x + y * y + z * z < cut2) & (il[l] != me);
                }
                out[f * nc + c] += n;
            }
            continue;
        }
        for (long c = 0; c < nc; c++) {
            const double *xi = X + 3 * ic[c];
            int64_t n = 0;
            for (long l = 0; l < nl; l++) {
                const double *xj = X + 3 * il[l];
                const double d0 = wrap(xj[0] - xi[0]), d1 = wrap(xj[1] - xi[1]), d2 = wrap(xj[2] - xi[2]);
                const int self = (il[l] == ic[c]);
                for (long n0 = -m0; n0 <= m0; n0++)
                    for (long n1 = -m1; n1 <= m1; n1++)
                        for (long n2 = -m2; n2 <= m2; n2++) {
                            if (self && n0 == 0 && n1 == 0 && n2 == 0) continue;
                            const double e0 = d0 + n0, e1 = d1 + n1, e2 = d2 + n2;
                            const double x = e0 * H[0] + e1 * H[3] + e2 * H[6];
                            const double y = e0 * H[1] + e1 * H[4] + e2 * H[7];
                            const double z = e0 * H[2] + e1 * H[5] + e2 * H[8];
                            n += (x * x + y * y + z * z < cut2);
                        }
            }
            out[f * nc + c] += n;
        }
    }
    free(lx);
}

/*
 * Per-atom neighbour counts by element of one frame under minimum image, for several cutoff tables at once
 * (the one neighbour search the environments and the unit counts share): out[t, i, kinds[j]] counts the atoms
 * j != i with d_ij < cut[t, kinds[i], kinds[j]]. frac (natoms, 3) in [0, 1); cell (3, 3) rows; cut2 holds the
 * squared cutoffs (ntab, nk, nk); out (ntab, natoms, nk) is overwritten. Exact while every cutoff is below half
 * the smallest perpendicular cell width (the caller checks). work: 4 * natoms doubles.
 */
void kind_counts(const double *frac, long natoms, const double *cell, const long *kinds, long nk, const double *cut2,
                 long ntab, int64_t *out, double *work) {
    const double *H = cell;
    double *bx = work, *by = work + natoms, *bz = work + 2 * natoms, *r2s = work + 3 * natoms;
    memset(out, 0, sizeof(int64_t) * (size_t)(ntab * natoms * nk));
    double cmax2 = 0.0;
    for (long k = 0; k < ntab * nk * nk; k++)
        if (cut2[k] > cmax2) cmax2 = cut2[k];
    for (long j = 0; j < natoms; j++) {
        bx[j] = frac[3 * j];
        by[j] = frac[3 * j + 1];
        bz[j] = frac[3 * j + 2];
    }
    for (long i = 0; i < natoms; i++) {
        const double x0 = bx[i], x1 = by[i], x2 = bz[i];
        const long ki = kinds[i];
        for (long j = i + 1; j < natoms; j++) {
            double d0 = wrap_unit(bx[j] - x0), d1 = wrap_unit(by[j] - x1), d2 = wrap_unit(bz[j] - x2);
            double x = d0 * H[0] + d1 * H[3] + d2 * H[6];
            double y = d0 * H[1] + d1 * H[4] + d2 * H[7];
            double z = d0 * H[2] + d1 * H[5] + d2 * H[8];
            r2s[j] = x * x + y * y + z * z;
        }
        for (long j = i + 1; j < natoms; j++) {
            const double r2 = r2s[j];
            if (r2 >= cmax2) continue;
            const long kj = kinds[j];
            for (long t = 0; t < ntab; t++) {
                const double *c2 = cut2 + t * nk * nk;
                /* both orders: a table given A-B and B-A apart need not be symmetric */
                out[(t * natoms + i) * nk + kj] += (r2 < c2[ki * nk + kj]);
                out[(t * natoms + j) * nk + ki] += (r2 < c2[kj * nk + ki]);
            }
        }
    }
}

/* NumPy's pairwise sum (the order np.sum uses along a contiguous axis), so the C and NumPy means agree. */
static double pairwise_sum(const double *a, long n) {
    if (n < 8) {
        double r = 0.0;
        for (long i = 0; i < n; i++) r += a[i];
        return r;
    }
    if (n <= 128) {
        double r[8];
        long i;
        for (int j = 0; j < 8; j++) r[j] = a[j];
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++) r[j] += a[i + j];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i];
        return res;
    }
    long n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

/* Ascending sort of a[0..n) (no NaN): quicksort, median-of-three pivot, insertion sort below 16 elements; inline
 * comparisons make it ~3x faster than qsort on the ~100-atom groups of a frame. */
static void sort_doubles(double *a, long n) {
    while (n > 16) {
        double x = a[0], y = a[n / 2], z = a[n - 1], t;
        const double pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        long i = 0, j = n - 1;
        for (;;) {
            while (a[i] < pivot) i++;
            while (a[j] > pivot) j--;
            if (i >= j) break;
            t = a[i];
            a[i] = a[j];
            a[j] = t;
            i++;
            j--;
        }
        /* recurse into the smaller side, loop on the larger: stack depth stays logarithmic */
        if (j + 1 < n - j - 1) {
            sort_doubles(a, j + 1);
            a += j + 1;
            n -= j + 1;
        } else {
            sort_doubles(a + j + 1, n - j - 1);
            n = j + 1;
        }
    }
    for (long i = 1; i < n; i++) {
        const double v = a[i];
        long j = i - 1;
        while (j >= 0 && a[j] > v) {
            a[j + 1] = a[j];
            j--;
        }
        a[j + 1] = v;
    }
}

/* Minimum-image Cartesian step of every atom from frame k to k + 1 of seq, in the cell H (rows a, b, c). */
static void step_vectors(const double *seq, long natoms, long k, const double *H, double *v) {
    const double *x0 = seq + k * natoms * 3, *x1 = x0 + natoms * 3;
    for (long i = 0; i < natoms; i++) {
        double d0 = x1[3 * i] - x0[3 * i], d1 = x1[3 * i + 1] - x0[3 * i + 1], d2 = x1[3 * i + 2] - x0[3 * i + 2];
        d0 -= rint(d0);
        d1 -= rint(d1);
        d2 -= rint(d2);
        v[3 * i] = d0 * H[0] + d1 * H[3] + d2 * H[6];
        v[3 * i + 1] = d0 * H[1] + d1 * H[4] + d2 * H[7];
        v[3 * i + 2] = d0 * H[2] + d1 * H[5] + d2 * H[8];
    }
}

/*
 * Per-step displacement statistics (cellsim.analysis.timestep.StepDisplacements): for each kept step k = sel[s]
 * (from frame k to k + 1 of seq (nsteps + 1, natoms, 3), fractional) and each element e (atoms order[starts[e]:
 * starts[e + 1]], ascending), rows[s, 0, e] = median and rows[s, 1, e] = 95th percentile (NumPy's linear method)
 * of the step lengths, rows[s, 2, e] = mean over the finite cosines between each atom's step and its previous
 * one (step k - 1, or prev (natoms, 3) for k = 0 when has_prev; NaN otherwise). cells (nsteps, 3, 3): the cell
 * of each step. last_out (natoms, 3) receives the vector of the last step. work: 8 * natoms doubles.
 */
void step_stats(const double *seq, long nsteps, long natoms, const double *cells, const long *sel, long nsel,
                const double *prev, int has_prev, const long *order, const long *starts, long nelem, double *rows,
                double *last_out, double *work) {
    double *v = work, *a = work + 3 * natoms, *dist = work + 6 * natoms, *buf = work + 7 * natoms;
    for (long s = 0; s < nsel; s++) {
        const long k = sel[s];
        step_vectors(seq, natoms, k, cells + 9 * k, v);
        int have_a = 1;
        if (k > 0) step_vectors(seq, natoms, k - 1, cells + 9 * (k - 1), a);
        else if (has_prev) memcpy(a, prev, sizeof(double) * 3 * (size_t)natoms);
        else have_a = 0;
        for (long i = 0; i < natoms; i++)
            dist[i] = sqrt(v[3 * i] * v[3 * i] + v[3 * i + 1] * v[3 * i + 1] + v[3 * i + 2] * v[3 * i + 2]);
        for (long e = 0; e < nelem; e++) {
            const long m = starts[e + 1] - starts[e];
            const long *idx = order + starts[e];
            double *row = rows + s * 3 * nelem;
            if (m == 0) {
                row[e] = row[nelem + e] = row[2 * nelem + e] = NAN;
                continue;
            }
            for (long j = 0; j < m; j++) buf[j] = dist[idx[j]];
            sort_doubles(buf, m);
            row[e] = (m % 2) ? buf[m / 2] : (buf[m / 2 - 1] + buf[m / 2]) / 2.0;
            const double vi = 0.95 * (double)(m - 1);
            const double lo = floor(vi);
            const long i0 = (long)lo, i1 = i0 + 1 < m ? i0 + 1 : m - 1;
            const double g = vi - lo, x0 = buf[i0], diff = buf[i1] - x0;
            row[nelem + e] = g >= 0.5 ? buf[i1] - diff * (1.0 - g) : x0 + diff * g;
            long nfin = 0;
            for (long j = 0; j < m; j++) {
                const long i = idx[j];
                double c = NAN;
                if (have_a) {
                    const double *ai = a + 3 * i, *vi = v + 3 * i;
                    const double norm = sqrt(ai[0] * ai[0] + ai[1] * ai[1] + ai[2] * ai[2]) * dist[i];
                    if (norm > 0.0) c = (ai[0] * vi[0] + ai[1] * vi[1] + ai[2] * vi[2]) / norm;
                }
                if (isfinite(c)) nfin++;
                else c = 0.0;
                buf[j] = c;
            }
            row[2 * nelem + e] = nfin ? pairwise_sum(buf, m) / (double)nfin : NAN;
        }
    }
    if (nsteps > 0) step_vectors(seq, natoms, nsteps - 1, cells + 9 * (nsteps - 1), last_out);
}

/*
 * Unwrapped paths of the atoms idx (nidx) over the frames of frac (nframes, natoms, 3; fractional): each step the
 * minimum image (d - rint(d)) of the change since the previous frame (prev_raw (nidx, 3) before the first), the
 * steps summed in order and added to prev_unw (nidx, 3): out (nframes, nidx, 3) = prev_unw + cumsum(steps), the
 * doubles of NumPy's diff / rint / cumsum (cellsim.analysis.diagnostics), in one pass without their five
 * temporaries (49 -> 13 ms for the 96 In atoms of the 10,000-frame benchmark, here). csum: nidx * 3 doubles.
 */
void unwrap_paths(const double *frac, long nframes, long natoms, const long *idx, long nidx, const double *prev_raw,
                  const double *prev_unw, double *out, double *csum) {
    for (long q = 0; q < 3 * nidx; q++) csum[q] = 0.0;
    for (long f = 0; f < nframes; f++) {
        const double *X = frac + f * natoms * 3, *P = f ? frac + (f - 1) * natoms * 3 : NULL;
        double *O = out + f * nidx * 3;
        for (long i = 0; i < nidx; i++) {
            const double *x = X + 3 * idx[i], *p = P ? P + 3 * idx[i] : prev_raw + 3 * i;
            for (int d = 0; d < 3; d++) {
                double step = x[d] - p[d];
                step -= rint(step);
                csum[3 * i + d] += step;
                O[3 * i + d] = prev_unw[3 * i + d] + csum[3 * i + d];
            }
        }
    }
}

/*
 * Per frame f of frac (nframes, natoms, 3), out[f] = 1 - the largest gap along c between consecutive atoms, the
 * one across the boundary (z_min + 1 - z_max) included: cellsim.analysis.rdf.occupied_fraction, the same doubles
 * as NumPy's sort and diff. No sort: natoms points on a circle of length 1 leave a gap of at least 1 / natoms, so
 * with natoms + 1 buckets along c the largest gap never lies inside a bucket; it is between the top of one
 * occupied bucket and the bottom of the next, the same two neighbours as in sorted order (floor(z * nb) is
 * monotone in z, and its rounding is far below the margin 1 / (natoms (natoms + 1))). Branch-free updates: 35 ->
 * 16 ms for the 10,000 frames of the benchmark, here. Returns 0, or -1 when a c coordinate lies outside [0, 1]
 * (the argument needs the circle; the caller then sorts). lo, hi: natoms + 1 doubles each.
 */
long occupied_fractions(const double *frac, long nframes, long natoms, double *out, double *lo, double *hi) {
    const long nb = natoms + 1;
    for (long f = 0; f < nframes; f++) {
        const double *X = frac + f * natoms * 3;
        for (long b = 0; b < nb; b++) {
            lo[b] = INFINITY; /* an empty bucket has lo > hi */
            hi[b] = -INFINITY;
        }
        for (long i = 0; i < natoms; i++) {
            const double z = X[3 * i + 2];
            if (!(z >= 0.0 && z <= 1.0)) return -1;
            long b = (long)(z * (double)nb);
            b = b < nb ? b : nb - 1;
            lo[b] = z < lo[b] ? z : lo[b];
            hi[b] = z > hi[b] ? z : hi[b];
        }
        double largest = 0.0, zmin = 0.0, prev = 0.0;
        int seen = 0;
        for (long b = 0; b < nb; b++) {
            const int occ = lo[b] <= hi[b];
            const double g = (occ && seen) ? lo[b] - prev : 0.0;
            largest = g > largest ? g : largest;
            zmin = (occ && !seen) ? lo[b] : zmin;
            prev = occ ? hi[b] : prev;
            seen |= occ;
        }
        const double wrap = zmin + 1.0 - prev;
        out[f] = 1.0 - (wrap > largest ? wrap : largest);
    }
    return 0;
}
