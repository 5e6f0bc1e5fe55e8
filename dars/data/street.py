"""One synthetic street scene (image and labelIds) for dars.data.synthetic: camera, painters, textures.

A pinhole camera at height HC looks along a straight street: a point (X right, Y up, z forward, in metres)
lands at x = vx + f X / z, y = yh + f (HC - Y) / z. Everything is placed and sized in metres, so farther
objects are smaller and other resolutions just work. Counts, sizes and distance ranges are calibrated so
that train-set class pixel shares land near CITYSCAPES_PIXEL_SHARE (every class within a factor 1.5).
Colours of different classes overlap on purpose: identity is carried by texture, shape and position.
"""
import math
from functools import partial

import cv2
import numpy as np



# Cityscapes labelIds; the first five are void (trainId 255).
UNLABELED, EGO, STATIC, GROUND, PARKING = 0, 1, 4, 6, 9
ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, LIGHT, SIGN, VEG, TERRAIN, SKY = 7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23
PERSON, RIDER, CAR, TRUCK, BUS, TRAIN, MOTO, BIKE = 24, 25, 26, 27, 28, 31, 32, 33

HC = 1.5  # camera height (m)
# Rare classes appear in exactly ceil(fraction * n) images of a split: their shares then vary little between
# seeds, and a random 1/8 labeled subset (30 of 240 train images) misses a given one with probability 0.5 %.
RARE = {TRUCK: 0.15, BUS: 0.15, TRAIN: 0.15, MOTO: 0.15}

# Base colours (RGB): gray-ish stuff and dark / bluish vehicles overlap deliberately.
ROAD_C, WALK_C, WALL_C, POLE_C = (96, 94, 100), (124, 116, 114), (126, 124, 118), (112, 114, 120)
FENCE_C, GRASS_C, LEAF_C, SOIL_C = (104, 96, 86), (118, 132, 76), (62, 92, 40), (120, 104, 84)
FACADES = ((112, 108, 104), (150, 140, 122), (128, 90, 76), (168, 164, 156), (92, 98, 108), (138, 128, 112))
VEHICLES = ((28, 32, 50), (48, 60, 94), (22, 24, 28), (138, 144, 156), (186, 190, 198), (58, 72, 112), (104, 40, 38),
            (38, 58, 80))
CLOTHES = ((30, 30, 36), (48, 52, 82), (92, 42, 42), (118, 110, 100), (42, 70, 62), (156, 148, 140), (72, 62, 52))
# Body parts of a 1.75 m person facing +u: (0 trousers | 1 top, polygon in metres above the feet).
WALKER_PARTS = ((0, ((-.16, 0), (-.04, 0), (-.02, .9), (-.16, .9))), (0, ((.04, 0), (.16, 0), (.16, .9), (.02, .9))),
                (1, ((-.2, .85), (.2, .85), (.22, 1.47), (-.22, 1.47))),  # torso and arms
                (1, ((-.29, .86), (-.2, .86), (-.21, 1.45), (-.28, 1.42))),
                (1, ((.2, .86), (.29, .86), (.28, 1.42), (.21, 1.45))))
RIDER_PARTS = ((0, ((-.22, .95), (.0, .95), (.16, .48), (.05, .42))),  # thigh down to the pedal
               (1, ((-.26, .9), (-.04, .9), (.16, 1.5), (-.08, 1.56))),  # torso leaning forward
               (1, ((.0, 1.4), (.09, 1.46), (.44, 1.1), (.37, 1.04))))  # arm to the handlebar
HELMETS = ((235, 235, 230), (230, 200, 40), (200, 40, 40), (40, 40, 44))
SKIN, DARK, LAMPS = (180, 150, 130), (24, 24, 26), ((230, 40, 30), (240, 180, 30), (40, 220, 90))
SIGNS = ((None, (200, 30, 30), (235, 235, 230)), (None, (30, 60, 170), (40, 80, 200)),  # (outline or round, colours)
         (((0, -1.1), (1.1, 0), (0, 1.1), (-1.1, 0)), (30, 30, 30), (230, 190, 20)),
         (((-1, -1), (1, -1), (1, 1), (-1, 1)), (230, 230, 230), (40, 90, 190)))

# Multiplicative texture amplitude per labelId of [pixel noise, leaf noise, horizontal streaks, blotches].
TEXTURE = np.tile(np.float32([[.03], [0], [0], [.04]]), (1, 256))
for _lid, _amp in {ROAD: (.05, 0, 0, .08), SIDEWALK: (.05, 0, 0, .06), BUILDING: (.03, 0, 0, .08),
                   WALL: (.05, 0, .08, .06), FENCE: (.12, 0, 0, .04), TERRAIN: (.07, .06, .22, .12),
                   VEG: (.05, .32, 0, .15),
                   SKY: (.01, 0, 0, .08), GROUND: (.1, .05, 0, .15), PARKING: (.07, 0, 0, .06),
                   EGO: (.02, 0, 0, .12)}.items():
    TEXTURE[:, _lid] = _amp


def _col(rng, base, s=14.0):
    """Per-instance colour: base plus a shared brightness shift and a smaller per-channel jitter."""
    n = rng.normal(0, s, 4).tolist()
    return tuple(min(255.0, max(0.0, b + n[0] + 0.5 * e)) for b, e in zip(base, n[1:]))


def _box(X0, X1, Y0, Y1, z):  # rectangle facing the camera
    return [(X0, Y0, z), (X1, Y0, z), (X1, Y1, z), (X0, Y1, z)]


def _side(X, z0, z1, Y0, Y1):  # rectangle in a plane parallel to the street
    return [(X, Y0, z0), (X, Y0, z1), (X, Y1, z1), (X, Y1, z0)]


def _ground(X0, X1, z0, z1):
    return [(X0, 0, z0), (X1, 0, z0), (X1, 0, z1), (X0, 0, z1)]


class _Scene:
    """Float RGB canvas plus labelIds map, drawn with OpenCV (4 fractional bits) in painter's order."""

    def __init__(self, rng, h, w):
        self.rng, self.h, self.w = rng, h, w
        self.yh, self.vx = h * rng.uniform(0.36, 0.45), w * rng.uniform(0.4, 0.6)  # horizon, vanishing point
        self.f = 1.1 * w                     # focal length (px): a Cityscapes-like field of view
        self.thin = 3.0 * h / 128  # poles, signs and lights stay >= 3 px wide at 128x256 (scaled)
        self.img = np.zeros((h, w, 3), np.float32)
        self.lab = np.zeros((h, w), np.uint8)

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


def _street_side(s, sg, R, Wk, F, zfar, green, objs):
    """One side (sg = -1 left, +1 right): curb at R, sidewalk to Wk, verge to the facades at F (metres)."""
    rng = s.rng
    s.faces([_ground(sg * R, sg * Wk, 1, zfar)], SIDEWALK, _col(rng, WALK_C))
    tz = np.arange(2.0, 40, 1.3)  # paving joints (image only)
    s.lines([(sg * R, 0, z) for z in tz], [(sg * Wk, 0, z) for z in tz], None, _col(rng, (88, 84, 84)))
    if rng.random() < 0.4:  # a grass strip between curb and sidewalk
        z0 = rng.uniform(3, 15)
        s.faces([_ground(sg * (R + .2), sg * (R + rng.uniform(1, 2)), z0, z0 + rng.uniform(10, 40))], TERRAIN,
                _col(rng, GRASS_C))
    if rng.random() < 0.3:  # a parking strip (void in Cityscapes), mostly with parked cars
        z0 = rng.uniform(5, 12)
        z1 = z0 + rng.uniform(12, 30)
        s.faces([_ground(sg * (R - 2.2), sg * R, z0, z1)], PARKING, _col(rng, (104, 100, 102)))
        for z in np.arange(z0 + .3, z1 - 4.4, rng.uniform(5, 7)):
            if rng.random() < 0.75:
                objs.append((z, partial(_vehicle, s, sg * (R - 1.1), z, CAR, 1.8, rng.uniform(1.4, 1.6), 4.4)))
    z0 = 1.0
    while F > Wk and z0 < zfar:  # verge: grass, bare ground (void) or paving
        z1, kind = z0 + rng.uniform(6, 25), rng.choice([TERRAIN, GROUND, SIDEWALK], p=[.45, .25, .3])
        colour = _col(rng, {TERRAIN: GRASS_C, GROUND: SOIL_C, SIDEWALK: WALK_C}[kind])
        s.faces([_ground(sg * Wk, sg * F, z0, z1)], kind, colour)
        z0 = z1
    shade, z0 = rng.uniform(0.65, 1.0), 1.0  # one side of the street lies in shadow
    while z0 < zfar:  # facades: buildings with window grids, or a park / tree mass
        z1 = min(z0 + rng.uniform(6, 25), zfar)
        if rng.random() < 0.4 * green:
            zs, ys = np.linspace(z0, z1, 6), rng.uniform(5, 13, 6)
            s.faces([[(sg * F, 0, z0)] + [(sg * F, y, z) for z, y in zip(zs, ys)] + [(sg * F, 0, z1)]], VEG,
                    _col(rng, LEAF_C))
        else:
            hb = rng.uniform(9, 26)
            colour = np.multiply(_col(rng, FACADES[rng.integers(len(FACADES))], 18), shade)
            s.faces([_side(sg * F, z0, z1, 0, hb)], BUILDING, tuple(colour))
            ys, zs = np.arange(2.2, hb - 1.6, 3.2), np.arange(z0 + 1, z1 - 1.4, 2.8)
            zs = zs[1.3 * s.f * F / zs ** 2 > 0.8]  # skip windows narrower than a pixel
            win = _col(rng, (60, 66, 80) if rng.random() < 0.6 else (150, 160, 175), 15)
            if len(ys) and len(zs):
                s.faces([_side(sg * (F - .02), z, z + 1.3, y, y + 1.5) for y in ys for z in zs], None, win)
        z0 = z1
    z0 = rng.uniform(4, 14)
    while z0 < 0.7 * zfar:  # walls, fences and hedges along the outer edge of the sidewalk
        z1, kind = z0 + rng.uniform(4, 16), rng.choice([WALL, FENCE, VEG, 0], p=[.16, .26, .1, .48])
        hgt, c = rng.uniform(0.8, 2.2), _col(rng, {WALL: WALL_C, FENCE: FENCE_C, VEG: LEAF_C, 0: WALL_C}[kind], 16)
        if kind == WALL:  # blocks with staggered joints, under a light coping
            s.faces([_side(sg * Wk, z0, z1, 0, hgt)], WALL, c)
            s.faces([_side(sg * Wk, z0, z1, hgt - .14, hgt + .06)], WALL, tuple(np.minimum(255, 1.3 * np.asarray(c))))
            ys, j = np.arange(0.4, hgt - .1, 0.4), _col(rng, (70, 68, 66))
            s.lines([(sg * Wk, y, z0) for y in ys], [(sg * Wk, y, z1) for y in ys], None, j)
            a = [(sg * Wk, y - .4, z) for k, y in enumerate(ys) for z in np.arange(z0 + .45 * (k % 2), z1, .9)]
            s.lines(a, [(X, y + .4, z) for X, y, z in a], None, j)
        elif kind == FENCE:  # see-through lattice: dark gaps and light bars, all labelled fence
            s.faces([_side(sg * Wk, z0, z1, 0, hgt)], FENCE, tuple(0.45 * np.asarray(c)))
            zb = np.arange(z0, z1, 0.3)
            s.lines([(sg * Wk, 0, z) for z in zb], [(sg * Wk, hgt + .1, z) for z in zb], None, c)
            s.lines([(sg * Wk, y, z0) for y in (.15, hgt)], [(sg * Wk, y, z1) for y in (.15, hgt)], None, c, 2)
        elif kind == VEG:  # hedge
            s.faces([_side(sg * Wk, z0, z1, 0, 0.7 * hgt)], VEG, c)
        z0 = z1 + rng.uniform(0, 8)
    if rng.random() < green + 0.05:  # a row of street trees
        Xt = sg * (Wk - 0.7 if F - Wk < 1.5 else (Wk + F) / 2)
        for z in np.arange(rng.uniform(4, 12), 70, rng.uniform(7, 14)):
            objs.append((z, partial(_tree, s, Xt, z)))
    for z in np.arange(rng.uniform(15, 32), 70 if rng.random() < 0.75 else 0, rng.uniform(25, 50)):
        objs.append((z, partial(_pole, s, sg * (R + 0.35), z, sg)))
    for _ in range(rng.integers(0, 4)):  # bins, boxes, advertising columns: 'static' void
        z, wd, hg = rng.uniform(8, 40), rng.uniform(0.4, 1.2), rng.uniform(0.5, 2.8)
        Xs, colour = sg * rng.uniform(R + .7, Wk - .3), _col(rng, (90, 100, 92), 30)
        objs.append((z, partial(s.faces, [_box(Xs - wd / 2, Xs + wd / 2, 0, hg, z)], STATIC, colour)))


def _tree(s, X, z):
    """Trunk plus a canopy of three overlapping ellipses; the trunk is vegetation in Cityscapes too."""
    rng = s.rng
    hb, r, hw = rng.uniform(1.8, 3.2), rng.uniform(1.6, 3.2), max(0.15, s.m(s.thin, z) / 2)
    s.faces([_box(X - hw, X + hw, 0, hb + r, z)], VEG, _col(rng, (72, 60, 48), 10))
    c = _col(rng, LEAF_C)
    for _ in range(3):
        s.disc(X + rng.uniform(-.5, .5) * r, hb + r * rng.uniform(.7, 1.3), z, r * rng.uniform(.7, 1),
               r * rng.uniform(.6, .9), VEG, c)


def _pole(s, X, z, sg):
    """A pole, mostly with a traffic light (on it, or on an arm over the road) and/or a traffic sign."""
    rng = s.rng
    top, hw = rng.uniform(3.5, 6.5), max(0.1, s.m(s.thin, z) / 2)
    s.faces([_box(X - hw, X + hw, 0, top, z)], POLE, _col(rng, POLE_C, 18))
    kind, lw, lh = rng.random(), max(0.35, s.m(1.4 * s.thin, z)), max(0.9, s.m(3.2 * s.thin, z))
    if kind < 0.5:
        Xl, Yl = X - sg * (hw + lw / 2), top - 0.4
        if kind < 0.25:
            Xl, Yl = X - sg * rng.uniform(1.5, 3.0), top - 0.1
            s.faces([_box(min(X, Xl), max(X, Xl), top - 2 * hw, top, z)], POLE, _col(rng, POLE_C, 18))
        s.faces([_box(Xl - lw / 2, Xl + lw / 2, Yl - lh, Yl, z)], LIGHT,
                _col(rng, (40, 42, 46) if rng.random() < 0.7 else (110, 100, 40), 10))
        lit = rng.integers(3)
        for i in range(3):
            s.disc(Xl, Yl - lh * (i + .5) / 3, z, lw * .34, lw * .34, None, LAMPS[i] if i == lit else (70, 64, 56))
    if rng.random() < 0.75:
        shape, border, face = SIGNS[rng.integers(len(SIGNS))]
        r, Yc = max(0.45, s.m(1.3 * s.thin, z)) * rng.uniform(0.9, 1.2), top - (1.6 if kind < 0.5 else 0.5)
        for k, c in ((1.0, _col(rng, border, 10)), (0.72, _col(rng, face, 10))):  # border, then face
            if shape is None:
                s.disc(X, Yc, z, r * k, r * k, SIGN, c)
            else:
                s.sprite(X, z, [(u * r * k, Yc + v * r * k) for u, v in shape], SIGN, c)


def _person(s, X, z, rider=False, d=1.0, dv=0.0):
    """A pedestrian, or (rider=True) the same kind of person seated on a two-wheeler facing d."""
    rng = s.rng
    k, st = rng.uniform(1.6, 1.9) / 1.75, rng.uniform(-0.12, 0.12)  # height scale, stride
    label, parts, head = (RIDER, RIDER_PARTS, (.08, 1.68)) if rider else (PERSON, WALKER_PARTS, (0, 1.6))
    clothes = [_col(rng, CLOTHES[i], 12) for i in rng.integers(len(CLOTHES), size=2)]
    for i, poly in parts:  # feet (v = 0) move apart by the stride
        s.sprite(X, z, [((u - st * np.sign(u) * (v == 0)) * k, v * k + dv) for u, v in poly], label, clothes[i], d)
    s.disc(X + d * head[0] * k, head[1] * k + dv, z, .1 * k, .12 * k, label, _col(rng, SKIN, 20))
    if rider:  # a helmet: a light shell over the head
        s.disc(X + d * head[0] * k, (head[1] + .07) * k + dv, z, .14 * k, .09 * k, label,
               _col(rng, HELMETS[rng.integers(len(HELMETS))], 12))


def _two_wheeler(s, X, z, label, ridden=True):
    """Side view of a bicycle or motorcycle (wheels labelled as filled discs, like Cityscapes polygons)."""
    rng, d = s.rng, s.rng.choice([-1.0, 1.0])
    r, u0 = (.34, .55) if label == BIKE else (.32, .7)
    for u in (-u0, u0):
        s.disc(X + d * u, r, z, r, r, label, _col(rng, (28, 28, 30), 5))  # tyre, then spokes or a silver hub
        s.disc(X + d * u, r, z, .68 * r, .68 * r, None, _col(rng, (100, 100, 98), 20)) if label == BIKE else \
            s.disc(X + d * u, r, z, .4 * r, .4 * r, None, _col(rng, (170, 170, 176), 12))
    palette = CLOTHES if label == BIKE else VEHICLES
    body = _col(rng, palette[rng.integers(len(palette))], 18)
    if label == BIKE:
        uv = [(-.55, .34), (-.08, .34), (.42, .82), (-.12, .84), (-.55, .34), (-.08, .34), (-.12, .84), (.55, .34),
              (.42, .82)]
        pts = [(X + d * u, v, z) for u, v in uv]
        s.lines(pts[:-1], pts[1:], BIKE, body, max(2 * s.thin / 3, s.f / z * 0.06))
    else:  # fairing and fork, engine block
        s.faces([[(X + d * u, v, z) for u, v in p] for p in (
            [(-.8, .45), (-.35, .78), (.2, .84), (.58, .76), (.74, .45), (.3, .26), (-.42, .28)],
            [(.46, .74), (.53, .74), (.62, 1.08), (.55, 1.08)])], MOTO, body)
        s.sprite(X, z, [(-.22, .22), (.26, .22), (.26, .56), (-.22, .56)], MOTO, _col(rng, (60, 60, 64), 8), d)
    if ridden:
        _person(s, X - d * (0.05 if label == MOTO else 0), z, rider=True, d=d, dv=-0.08 if label == MOTO else 0)


# Per vehicle: near-face outline (u across the width, v up, as fractions of width / height), side outline
# (t along the length), wheel positions t, near-face glass (half width u, v from, v to), side glass band.
VEHICLE_SHAPES = {
    CAR: ([(-.5, .12), (.5, .12), (.5, .6), (.38, 1), (-.38, 1), (-.5, .6)],
          [(0, .12), (1, .12), (1, .6), (.8, .63), (.66, 1), (.26, 1), (.12, .63), (0, .6)], (.18, .82),
          (.34, .64, .93), (.14, .78, .66, .95)),
    TRUCK: ([(-.5, .12), (.5, .12), (.5, 1), (-.5, 1)], [(0, .12), (1, .12), (1, .78), (.76, .8), (.74, 1), (0, 1)],
            (.12, .25, .86), None, (.78, .97, .6, .76)),
    BUS: ([(-.5, .1), (.5, .1), (.5, .97), (.46, 1), (-.46, 1), (-.5, .97)],
          [(0, .1), (1, .1), (1, .97), (.98, 1), (.02, 1), (0, .97)], (.15, .78), (.44, .55, .9), (.05, .95, .5, .88)),
    TRAIN: ([(-.5, .12), (.5, .12), (.5, .9), (.38, 1), (-.38, 1), (-.5, .9)],
            [(0, .12), (1, .12), (1, .9), (.98, 1), (0, 1)], (.1, .3, .7, .9), (.4, .5, .86), (.04, .96, .5, .82)),
}


def _vehicle(s, X, z, label, w, hgt, L):
    """A vehicle with its near face at depth z: the side facing the street centre first, then the near face."""
    rng = s.rng
    near, side, wheels, glass_near, (t0, t1, g0, g1) = VEHICLE_SHAPES[label]
    body = _col(rng, VEHICLES[rng.integers(len(VEHICLES))], 16)
    if label == TRUCK and rng.random() < 0.6:
        body = _col(rng, (170, 172, 176), 25)  # light cargo box
    glass, dim, stripe = _col(rng, (42, 48, 62), 10), tuple(0.8 * np.asarray(body)), _col(rng, (236, 160, 40), 20)
    if abs(X) > w / 2:  # that side is visible
        Xs = X - math.copysign(w / 2, X)
        s.faces([[(Xs, v * hgt, z + t * L) for t, v in side]], label, dim)
        s.faces([_side(Xs, z + t0 * L, z + t1 * L, g0 * hgt, g1 * hgt)], None, glass)
        if label in (BUS, TRAIN):  # window pillars and doors, a coloured band below the windows
            zs = z + L * np.arange(t0, t1, 0.09 if label == BUS else 0.06)
            s.lines([(Xs, g0 * hgt, q) for q in zs], [(Xs, g1 * hgt, q) for q in zs], None, dim)
            s.faces([_side(Xs, z + .02 * L, z + .98 * L, (g0 - .12) * hgt, (g0 - .05) * hgt)], None, stripe)
        elif label == TRUCK:  # ribs of the cargo box
            zs = z + L * np.arange(.05, .74, .06)
            s.lines([(Xs, .2 * hgt, q) for q in zs], [(Xs, .97 * hgt, q) for q in zs], None, 0.7 * np.asarray(dim))
        ang = np.linspace(0, 2 * np.pi, 10)
        s.faces([[(Xs, .36 + .36 * np.sin(a), z + t * L + .36 * np.cos(a)) for a in ang] for t in wheels], label, DARK)
    s.faces([[(X + u * w, v * hgt, z) for u, v in near]], label, body)
    if glass_near:
        hu, lo, hi = glass_near
        s.faces([_box(X - hu * w, X + hu * w, lo * hgt, hi * hgt, z)], None, glass)
        if label in (BUS, TRAIN):  # destination display, and a band below the windscreen
            s.faces([_box(X - .3 * w, X + .3 * w, (hi - .08) * hgt, (hi - .01) * hgt, z),
                     _box(X - .5 * w, X + .5 * w, (lo - .12) * hgt, (lo - .05) * hgt, z)], None, stripe)
    s.faces([_box(X - .5 * w, X - .32 * w, 0, .14 * hgt, z), _box(X + .32 * w, X + .5 * w, 0, .14 * hgt, z)], label,
            DARK)  # wheels / bumper
    if label == TRAIN:  # pantograph on the roof
        zp = z + 0.3 * L
        s.lines([(X, hgt, zp), (X - .4, hgt + .6, zp)], [(X - .4, hgt + .6, zp), (X + .3, hgt + 1, zp)], TRAIN, DARK,
                max(1, s.thin / 2))


def _scene(rng, h, w, rare):
    """Draw one street scene; `rare` lists the rare vehicle classes this image must contain."""
    s = _Scene(rng, h, w)
    zfar, green = rng.uniform(70, 140), rng.uniform(0, 1)  # length of the street, how leafy it is
    sky = np.asarray(_col(rng, [(96, 140, 200), (176, 180, 190), (136, 164, 204)][rng.integers(3)], 12))
    ramp = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    s.img[:], s.lab[:] = sky * (1 - 0.5 * ramp) + 0.5 * ramp * 235, SKY
    s.fill([[(0, s.yh), (w, s.yh), (w, h), (0, h)]], ROAD, _col(rng, ROAD_C))
    sides, objs = [], []  # objs: (distance, draw call), drawn far to near after the background
    for sg in (-1, 1):
        R = rng.uniform(3.2, 6.2)
        Wk = R + rng.uniform(3.2, 7.0)
        sides.append((sg, R, Wk, Wk + (rng.uniform(1, 4) if rng.random() < 0.5 else 0)))
    (_, Rl, _, Fl), (_, Rr, _, Fr) = sides
    kind = VEG if rng.random() < 0.3 * green else BUILDING  # the far end of the street
    s.faces([_box(-Fl - 10, Fr + 10, 0, rng.uniform(7, 22), zfar)], kind,
            _col(rng, LEAF_C if kind == VEG else FACADES[0], 18))
    if rng.random() < 0.5:  # unidentifiable clutter at the far end: 'unlabeled'
        s.faces([_box(-Fl, -Fl + rng.uniform(2, 8), 0, rng.uniform(2, 5), zfar - 1)], UNLABELED,
                _col(rng, (90, 90, 90), 30))
    for side in sides:
        _street_side(s, *side, zfar, green, objs)
    mark, lw, xc = _col(rng, (200, 200, 196), 20), max(0.15, s.m(1.0, 8)), (Rr - Rl) / 2  # lane markings
    s.faces([_ground(xc - lw / 2, xc + lw / 2, z, z + 3) for z in np.arange(rng.uniform(2, 8), zfar, 9.0)] +
            [_ground(x - lw / 2, x + lw / 2, 1, zfar) for x in (-Rl + .3, Rr - .3)], None, mark)
    taken = []  # rare vehicles go first, each in its own lane, and nearer cars keep out of their way
    lanes, lo, hi = rng.permutation(len(rare)), -Rl + 1.4, Rr - 1.4
    for label, lane in zip(rare, lanes):
        w_, h_, L, zr = {TRUCK: (2.5, rng.uniform(3.2, 3.8), rng.uniform(7, 11), (28, 47)),
                         BUS: (2.55, rng.uniform(3.0, 3.3), 12.0, (28, 46)),
                         TRAIN: (2.65, 3.5, rng.uniform(25, 35), (33, 52)), MOTO: (1.6, 0, 0, (14, 30))}[label]
        X, z = lo + (lane + rng.uniform(0.2, 0.8)) * (hi - lo) / len(rare), rng.uniform(*zr)
        taken.append((X - w_ / 2 - 1.5, X + w_ / 2 + 1.5, z))
        draw = partial(_two_wheeler, s, X, z, MOTO) if label == MOTO else partial(_vehicle, s, X, z, label, w_, h_, L)
        objs.append((z, draw))
    for _ in range(rng.poisson(2.85)):
        X, z = rng.uniform(-Rl + 1, Rr - 1), rng.uniform(9, 60)
        if not any(a < X < b and z < zt for a, b, zt in taken):
            objs.append((z, partial(_vehicle, s, X, z, CAR, 1.8, rng.uniform(1.4, 1.6), 4.4)))
    parked_bike = partial(_two_wheeler, label=BIKE, ridden=False)
    for n, draw, zr in ((rng.integers(3, 11), _person, (5, 25)), (rng.integers(0, 3), parked_bike, (8, 32))):
        for _ in range(n):  # pedestrians and parked bicycles on the sidewalks
            sg, R, Wk, _ = sides[rng.integers(2)]
            X, z = sg * rng.uniform(R + 0.6, Wk - 0.3), rng.uniform(*zr)
            objs.append((z, partial(draw, s, X, z)))
    if rng.random() < 0.38:  # a cyclist at the road edge
        X, z = rng.choice([-Rl + 0.8, Rr - 0.8]), rng.uniform(10, 28)
        objs.append((z, partial(_two_wheeler, s, X, z, BIKE)))
    for _, draw in sorted(objs, key=lambda o: -o[0]):
        draw()
    eh, xs = h * rng.uniform(0.07, 0.1), np.linspace(0, w, 17)  # the ego vehicle's hood, with a highlight
    hood = np.stack([xs, h - eh * (1 - 0.6 * (2 * xs / w - 1) ** 2)], 1)
    s.fill([np.vstack([hood, [(w, h), (0, h)]])], EGO, _col(rng, (34, 36, 42), 8))
    s.fill([np.vstack([hood, hood[::-1] + (0, h / 128)])], None, _col(rng, (90, 92, 98), 15))
    return s


def _finish(s):
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


def render(seed, split_index, index, height=128, width=256, rare=()):
    """RGB image and labelIds of one scene, drawn from its own generator [seed, split_index, index]."""
    return _finish(_scene(np.random.default_rng([seed, split_index, index]), height, width, tuple(rare)))
