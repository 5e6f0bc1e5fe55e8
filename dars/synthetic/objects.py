"""Things of the synthetic street scenes: trees, poles with lights and signs, people, two-wheelers, vehicles.

Each painter draws into a draw.Scene `s`; fixed colours go through s.col / s.tint, so that a
domain's tint recolours them, and the palette entries come from the scene's Style `s.st`.
"""
import math

import numpy as np

from .draw import BIKE, BUS, CAR, LIGHT, MOTO, PERSON, POLE, RIDER, SIGN, TRAIN, TRUCK, VEG, front_rect, side_rect

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


def tree(s, X, z):
    """Trunk plus a canopy of three overlapping ellipses; the trunk is vegetation in Cityscapes too."""
    rng = s.rng
    hb, r, hw = rng.uniform(1.8, 3.2), rng.uniform(1.6, 3.2), max(0.15, s.m(s.thin, z) / 2)
    s.faces([front_rect(X - hw, X + hw, 0, hb + r, z)], VEG, s.col((72, 60, 48), 10))
    c = s.col(s.st.leaf)
    for _ in range(3):
        s.disc(X + rng.uniform(-.5, .5) * r, hb + r * rng.uniform(.7, 1.3), z, r * rng.uniform(.7, 1),
               r * rng.uniform(.6, .9), VEG, c)


def pole(s, X, z, sg):
    """A pole, mostly with a traffic light (on it, or on an arm over the road) and/or a traffic sign."""
    rng, st = s.rng, s.st
    top, hw = rng.uniform(3.5, 6.5), max(0.1, s.m(s.thin, z) / 2)
    s.faces([front_rect(X - hw, X + hw, 0, top, z)], POLE, s.col(st.pole, 18))
    kind, lw, lh = rng.random(), max(0.35, s.m(1.4 * s.thin, z)), max(0.9, s.m(3.2 * s.thin, z))
    if kind < st.p_light:
        Xl, Yl = X - sg * (hw + lw / 2), top - 0.4
        if kind < st.p_light / 2:
            Xl, Yl = X - sg * rng.uniform(1.5, 3.0), top - 0.1
            s.faces([front_rect(min(X, Xl), max(X, Xl), top - 2 * hw, top, z)], POLE, s.col(st.pole, 18))
        s.faces([front_rect(Xl - lw / 2, Xl + lw / 2, Yl - lh, Yl, z)], LIGHT,
                s.col((40, 42, 46) if rng.random() < 0.7 else (110, 100, 40), 10))
        lit = rng.integers(3)
        for i in range(3):
            s.disc(Xl, Yl - lh * (i + .5) / 3, z, lw * .34, lw * .34, None,
                   s.tint(LAMPS[i] if i == lit else (70, 64, 56)))
    if rng.random() < st.p_sign:
        shape, border, face = SIGNS[rng.integers(len(SIGNS))]
        r, Yc = max(0.45, s.m(1.3 * s.thin, z)) * rng.uniform(0.9, 1.2), top - (1.6 if kind < st.p_light else 0.5)
        for k, c in ((1.0, s.col(border, 10)), (0.72, s.col(face, 10))):  # border, then face
            if shape is None:
                s.disc(X, Yc, z, r * k, r * k, SIGN, c)
            else:
                s.sprite(X, z, [(u * r * k, Yc + v * r * k) for u, v in shape], SIGN, c)


def person(s, X, z, rider=False, d=1.0, dv=0.0):
    """A pedestrian, or (rider=True) the same kind of person seated on a two-wheeler facing d."""
    rng, clothes = s.rng, s.st.clothes
    k, st = rng.uniform(1.6, 1.9) / 1.75, rng.uniform(-0.12, 0.12)  # height scale, stride
    label, parts, head = (RIDER, RIDER_PARTS, (.08, 1.68)) if rider else (PERSON, WALKER_PARTS, (0, 1.6))
    worn = [s.col(clothes[i], 12) for i in rng.integers(len(clothes), size=2)]
    for i, poly in parts:  # feet (v = 0) move apart by the stride
        s.sprite(X, z, [((u - st * np.sign(u) * (v == 0)) * k, v * k + dv) for u, v in poly], label, worn[i], d)
    s.disc(X + d * head[0] * k, head[1] * k + dv, z, .1 * k, .12 * k, label, s.col(SKIN, 20))
    if rider:  # a helmet: a light shell over the head
        s.disc(X + d * head[0] * k, (head[1] + .07) * k + dv, z, .14 * k, .09 * k, label,
               s.col(HELMETS[rng.integers(len(HELMETS))], 12))


def two_wheeler(s, X, z, label, ridden=True):
    """Side view of a bicycle or motorcycle (wheels labelled as filled discs, like Cityscapes polygons)."""
    rng, d = s.rng, s.rng.choice([-1.0, 1.0])
    r, u0 = (.34, .55) if label == BIKE else (.32, .7)
    for u in (-u0, u0):
        s.disc(X + d * u, r, z, r, r, label, s.col((28, 28, 30), 5))  # tyre, then spokes or a silver hub
        s.disc(X + d * u, r, z, .68 * r, .68 * r, None, s.col((100, 100, 98), 20)) if label == BIKE else \
            s.disc(X + d * u, r, z, .4 * r, .4 * r, None, s.col((170, 170, 176), 12))
    palette = s.st.clothes if label == BIKE else s.st.vehicles
    body = s.col(palette[rng.integers(len(palette))], 18)
    if label == BIKE:
        uv = [(-.55, .34), (-.08, .34), (.42, .82), (-.12, .84), (-.55, .34), (-.08, .34), (-.12, .84), (.55, .34),
              (.42, .82)]
        pts = [(X + d * u, v, z) for u, v in uv]
        s.lines(pts[:-1], pts[1:], BIKE, body, max(2 * s.thin / 3, s.f / z * 0.06))
    else:  # fairing and fork, engine block
        s.faces([[(X + d * u, v, z) for u, v in p] for p in (
            [(-.8, .45), (-.35, .78), (.2, .84), (.58, .76), (.74, .45), (.3, .26), (-.42, .28)],
            [(.46, .74), (.53, .74), (.62, 1.08), (.55, 1.08)])], MOTO, body)
        s.sprite(X, z, [(-.22, .22), (.26, .22), (.26, .56), (-.22, .56)], MOTO, s.col((60, 60, 64), 8), d)
    if ridden:
        person(s, X - d * (0.05 if label == MOTO else 0), z, rider=True, d=d, dv=-0.08 if label == MOTO else 0)


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


def vehicle(s, X, z, label, w, hgt, L):
    """A vehicle with its near face at depth z: the side facing the street centre first, then the near face."""
    rng, vehicles = s.rng, s.st.vehicles
    near, side, wheels, glass_near, (t0, t1, g0, g1) = VEHICLE_SHAPES[label]
    body = s.col(vehicles[rng.integers(len(vehicles))], 16)
    if label == TRUCK and rng.random() < 0.6:
        body = s.col((170, 172, 176), 25)  # light cargo box
    glass, dim, stripe = s.col((42, 48, 62), 10), tuple(0.8 * np.asarray(body)), s.col((236, 160, 40), 20)
    dark = s.tint(DARK)
    if abs(X) > w / 2:  # that side is visible
        Xs = X - math.copysign(w / 2, X)
        s.faces([[(Xs, v * hgt, z + t * L) for t, v in side]], label, dim)
        s.faces([side_rect(Xs, z + t0 * L, z + t1 * L, g0 * hgt, g1 * hgt)], None, glass)
        if label in (BUS, TRAIN):  # window pillars and doors, a coloured band below the windows
            zs = z + L * np.arange(t0, t1, 0.09 if label == BUS else 0.06)
            s.lines([(Xs, g0 * hgt, q) for q in zs], [(Xs, g1 * hgt, q) for q in zs], None, dim)
            s.faces([side_rect(Xs, z + .02 * L, z + .98 * L, (g0 - .12) * hgt, (g0 - .05) * hgt)], None, stripe)
        elif label == TRUCK:  # ribs of the cargo box
            zs = z + L * np.arange(.05, .74, .06)
            s.lines([(Xs, .2 * hgt, q) for q in zs], [(Xs, .97 * hgt, q) for q in zs], None, 0.7 * np.asarray(dim))
        ang = np.linspace(0, 2 * np.pi, 10)
        s.faces([[(Xs, .36 + .36 * np.sin(a), z + t * L + .36 * np.cos(a)) for a in ang] for t in wheels], label, dark)
    s.faces([[(X + u * w, v * hgt, z) for u, v in near]], label, body)
    if glass_near:
        hu, lo, hi = glass_near
        s.faces([front_rect(X - hu * w, X + hu * w, lo * hgt, hi * hgt, z)], None, glass)
        if label in (BUS, TRAIN):  # destination display, and a band below the windscreen
            s.faces([front_rect(X - .3 * w, X + .3 * w, (hi - .08) * hgt, (hi - .01) * hgt, z),
                     front_rect(X - .5 * w, X + .5 * w, (lo - .12) * hgt, (lo - .05) * hgt, z)], None, stripe)
    s.faces([front_rect(X - .5 * w, X - .32 * w, 0, .14 * hgt, z),
             front_rect(X + .32 * w, X + .5 * w, 0, .14 * hgt, z)], label, dark)  # wheels / bumper
    if label == TRAIN:  # pantograph on the roof
        zp = z + 0.3 * L
        s.lines([(X, hgt, zp), (X - .4, hgt + .6, zp)], [(X - .4, hgt + .6, zp), (X + .3, hgt + 1, zp)], TRAIN, dark,
                max(1, s.thin / 2))
