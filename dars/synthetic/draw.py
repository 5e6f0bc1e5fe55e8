"""Drawing primitives of the synthetic street scenes: labelIds, the pinhole camera, the canvas, city textures.

A pinhole camera at height HC looks along a straight street: a point (X right, Y up, z forward, in metres)
lands at x = vx + f X / z, y = yh + f (HC - Y) / z. Everything is placed and sized in metres, so farther
objects are smaller and other resolutions just work.
"""
import cv2
import numpy as np

# Cityscapes labelIds; the first five are void (trainId 255).
UNLABELED, EGO, STATIC, GROUND, PARKING = 0, 1, 4, 6, 9
ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, LIGHT, SIGN, VEG, TERRAIN, SKY = 7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23
PERSON, RIDER, CAR, TRUCK, BUS, TRAIN, MOTO, BIKE = 24, 25, 26, 27, 28, 31, 32, 33

HC = 1.5  # camera height (m)

# Multiplicative texture amplitude per labelId of [pixel noise, leaf noise, horizontal streaks, blotches]
# (the city domain; the game domain has its own table in game.py).
TEXTURE = np.tile(np.float32([[.03], [0], [0], [.04]]), (1, 256))
for _lid, _amp in {ROAD: (.05, 0, 0, .08), SIDEWALK: (.05, 0, 0, .06), BUILDING: (.03, 0, 0, .08),
                   WALL: (.05, 0, .08, .06), FENCE: (.12, 0, 0, .04), TERRAIN: (.07, .06, .22, .12),
                   VEG: (.05, .32, 0, .15),
                   SKY: (.01, 0, 0, .08), GROUND: (.1, .05, 0, .15), PARKING: (.07, 0, 0, .06),
                   EGO: (.02, 0, 0, .12)}.items():
    TEXTURE[:, _lid] = _amp


def jitter(rng, base, s=14.0):
    """Per-instance colour: base plus a shared brightness shift and a smaller per-channel jitter."""
    n = rng.normal(0, s, 4).tolist()
    return tuple(min(255.0, max(0.0, b + n[0] + 0.5 * e)) for b, e in zip(base, n[1:]))


def front_rect(X0, X1, Y0, Y1, z):  # rectangle facing the camera
    return [(X0, Y0, z), (X1, Y0, z), (X1, Y1, z), (X0, Y1, z)]


def side_rect(X, z0, z1, Y0, Y1):  # rectangle in a plane parallel to the street
    return [(X, Y0, z0), (X, Y0, z1), (X, Y1, z1), (X, Y1, z0)]


def ground_rect(X0, X1, z0, z1):
    return [(X0, 0, z0), (X1, 0, z0), (X1, 0, z1), (X0, 0, z1)]


class Scene:
    """Float RGB canvas plus labelIds map, drawn with OpenCV (4 fractional bits) in painter's order.

    `st` is the domain's Style (style.py): its palette and layout knobs; the random draws are the
    same for every domain, so a domain changes values, never the order in which the generator is consumed.
    """

    def __init__(self, rng, h, w, st):
        self.rng, self.h, self.w, self.st = rng, h, w, st
        self.yh, self.vx = h * rng.uniform(*st.horizon), w * rng.uniform(0.4, 0.6)  # horizon, vanishing point
        self.f = st.focal * w                # focal length (px)
        self.thin = 3.0 * h / 128  # poles, signs and lights stay >= 3 px wide at 128x256 (scaled)
        self.img = np.zeros((h, w, 3), np.float32)
        self.lab = np.zeros((h, w), np.uint8)

    def tint(self, colour):
        """The domain's colour transform of a fixed colour (identity for the city domain)."""
        return colour if self.st.tint is None else self.st.tint(colour)

    def col(self, base, s=14.0):
        """A per-instance colour around `base`, after the domain's tint."""
        return jitter(self.rng, self.tint(base), s)

    def m(self, px, z):
        """Metres spanned by `px` pixels at distance z."""
        return px * z / self.f

    def proj(self, X, Y, z):
        return self.vx + self.f * X / z, self.yh + self.f * (HC - Y) / z

    def fill(self, polys, label, colour):
        """Fill pixel polygons; label None paints appearance only (windows, markings...)."""
        p = [np.round(np.asarray(q, float) * 16).astype(np.int32) for q in polys]
        if label is not None:
            cv2.fillPoly(self.lab, p, int(label), cv2.LINE_8, 4)
        cv2.fillPoly(self.img, p, colour, cv2.LINE_8, 4)

    def faces(self, corners, label, colour):
        """Fill planar polygons, each a list of (X, Y, z) corners in metres (projected in groups of equal size)."""
        groups, polys = {}, []
        for q in corners:
            groups.setdefault(len(q), []).append(q)
        for g in groups.values():
            c = np.asarray(g, float)
            polys += list(np.stack(self.proj(c[..., 0], c[..., 1], c[..., 2]), -1))
        self.fill(polys, label, colour)

    def sprite(self, X, z, uv, label, colour, d=1.0):
        """Polygon in the frontal plane at depth z, uv in metres from ground point X; d = -1 mirrors it."""
        self.faces([[(X + d * u, v, z) for u, v in uv]], label, colour)

    def disc(self, X, Y, z, rx, ry, label, colour):
        x, y = self.proj(X, Y, z)
        c, ax = (round(x * 16), round(y * 16)), (max(8, int(rx * self.f / z * 16)), max(8, int(ry * self.f / z * 16)))
        if label is not None:
            cv2.ellipse(self.lab, c, ax, 0, 0, 360, int(label), -1, cv2.LINE_8, 4)
        cv2.ellipse(self.img, c, ax, 0, 0, 360, colour, -1, cv2.LINE_8, 4)

    def lines(self, a, b, label, colour, px=1):
        """Segments between 3D endpoints a[i] and b[i], `px` pixels thick."""
        (xa, ya), (xb, yb) = self.proj(*np.asarray(a, float).T), self.proj(*np.asarray(b, float).T)
        for seg in np.round(np.stack([xa, ya, xb, yb], 1) * 16).astype(int).tolist():
            for canvas, c in ((self.lab, label), (self.img, colour)):
                if c is not None:
                    cv2.line(canvas, seg[:2], seg[2:], c, max(1, int(px)), cv2.LINE_8, 4)


def finish_city(s):
    """Class textures (by labelId), then per-image illumination and colour cast, slight blur, sensor noise."""
    rng, h, w = s.rng, s.h, s.w
    fine = rng.standard_normal((h, w), dtype=np.float32)
    leaf = cv2.GaussianBlur(fine, (0, 0), 0.6 * h / 128)  # foliage grain, scaled with the resolution
    streak = cv2.blur(fine, (max(3, w // 40), 1))  # grass and wall texture
    leaf, streak = leaf / (leaf.std() + 1e-6), streak / (streak.std() + 1e-6)
    blob = cv2.resize(rng.standard_normal((h // 12 + 2, w // 12 + 2), dtype=np.float32), (w, h),
                      interpolation=cv2.INTER_CUBIC)
    amp = TEXTURE[:, s.lab]
    tex = 1 + amp[0] * fine + amp[1] * leaf + amp[2] * streak + amp[3] * blob
    gain = (rng.uniform(0.8, 1.15) * rng.uniform(0.96, 1.04, 3)).astype(np.float32)
    img = cv2.GaussianBlur(s.img * tex[..., None] * gain + np.float32(rng.uniform(-6, 6)), (3, 3), 0.4)
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(rng.uniform(1.5, 4))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), s.lab
