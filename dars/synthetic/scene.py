"""One synthetic street scene (image and labelIds) for dars.synthetic.dataset: the street layout and render().

Drawing primitives and the camera are in draw.py, the things in the street in objects.py, the
domains (palette, lighting, layout knobs) in style.py (city) and game.py (game). For the city
domain, counts, sizes and distance ranges are calibrated so that train-set class pixel shares land near
CITYSCAPES_PIXEL_SHARE (every class within a factor 1.5). Colours of different classes overlap on purpose:
identity is carried by texture, shape and position.
"""
from functools import partial

import numpy as np

from .draw import (
    BIKE,
    BUILDING,
    BUS,
    CAR,
    EGO,
    FENCE,
    GROUND,
    MOTO,
    PARKING,
    ROAD,
    SIDEWALK,
    SKY,
    STATIC,
    TERRAIN,
    TRAIN,
    TRUCK,
    UNLABELED,
    VEG,
    WALL,
    Scene,
    front_rect,
    ground_rect,
    side_rect,
)
from .game import GAME
from .objects import person, pole, tree, two_wheeler, vehicle
from .style import CITY

DOMAINS = {"city": CITY, "game": GAME}


def _facades(s, sg, F, zfar, green):
    """Buildings with window grids, or a park / tree mass, along the facade line at F."""
    rng, st = s.rng, s.st
    shade, z0 = rng.uniform(0.65, 1.0), 1.0  # one side of the street lies in shadow
    while z0 < zfar:  # facades: buildings with window grids, or a park / tree mass
        z1 = min(z0 + rng.uniform(6, 25), zfar)
        if rng.random() < st.p_park * green:
            zs, ys = np.linspace(z0, z1, 6), rng.uniform(5, 13, 6)
            s.faces([[(sg * F, 0, z0)] + [(sg * F, y, z) for z, y in zip(zs, ys)] + [(sg * F, 0, z1)]], VEG,
                    s.col(st.leaf))
        else:
            hb = rng.uniform(*st.building_h)
            colour = np.multiply(s.col(st.facades[rng.integers(len(st.facades))], 18), shade)
            s.faces([side_rect(sg * F, z0, z1, 0, hb)], BUILDING, tuple(colour))
            ys, zs = np.arange(2.2, hb - 1.6, 3.2), np.arange(z0 + 1, z1 - 1.4, 2.8)
            zs = zs[1.3 * s.f * F / zs ** 2 > 0.8]  # skip windows narrower than a pixel
            win = s.col((60, 66, 80) if rng.random() < 0.6 else (150, 160, 175), 15)
            if len(ys) and len(zs):
                s.faces([side_rect(sg * (F - .02), z, z + 1.3, y, y + 1.5) for y in ys for z in zs], None, win)
        z0 = z1


def _edges(s, sg, Wk, zfar):
    """Walls, fences and hedges along the outer edge of the sidewalk at Wk."""
    rng, st = s.rng, s.st
    z0 = rng.uniform(4, 14)
    while z0 < 0.7 * zfar:  # walls, fences and hedges along the outer edge of the sidewalk
        z1, kind = z0 + rng.uniform(4, 16), rng.choice([WALL, FENCE, VEG, 0], p=st.edge_p)
        hgt, c = rng.uniform(0.8, 2.2), s.col({WALL: st.wall, FENCE: st.fence, VEG: st.leaf, 0: st.wall}[kind], 16)
        if kind == WALL:  # blocks with staggered joints, under a light coping
            s.faces([side_rect(sg * Wk, z0, z1, 0, hgt)], WALL, c)
            coping = tuple(np.minimum(255, 1.3 * np.asarray(c)))
            s.faces([side_rect(sg * Wk, z0, z1, hgt - .14, hgt + .06)], WALL, coping)
            ys, j = np.arange(0.4, hgt - .1, 0.4), s.col((70, 68, 66))
            s.lines([(sg * Wk, y, z0) for y in ys], [(sg * Wk, y, z1) for y in ys], None, j)
            a = [(sg * Wk, y - .4, z) for k, y in enumerate(ys) for z in np.arange(z0 + .45 * (k % 2), z1, .9)]
            s.lines(a, [(X, y + .4, z) for X, y, z in a], None, j)
        elif kind == FENCE:  # see-through lattice: dark gaps and light bars, all labelled fence
            s.faces([side_rect(sg * Wk, z0, z1, 0, hgt)], FENCE, tuple(0.45 * np.asarray(c)))
            zb = np.arange(z0, z1, 0.3)
            s.lines([(sg * Wk, 0, z) for z in zb], [(sg * Wk, hgt + .1, z) for z in zb], None, c)
            s.lines([(sg * Wk, y, z0) for y in (.15, hgt)], [(sg * Wk, y, z1) for y in (.15, hgt)], None, c, 2)
        elif kind == VEG:  # hedge
            s.faces([side_rect(sg * Wk, z0, z1, 0, 0.7 * hgt)], VEG, c)
        z0 = z1 + rng.uniform(0, 8)


def _street_side(s, sg, R, Wk, F, zfar, green, objs):
    """One side (sg = -1 left, +1 right): curb at R, sidewalk to Wk, verge to the facades at F (metres)."""
    rng, st = s.rng, s.st
    s.faces([ground_rect(sg * R, sg * Wk, 1, zfar)], SIDEWALK, s.col(st.walk))
    tz = np.arange(2.0, 40, 1.3)  # paving joints (image only)
    s.lines([(sg * R, 0, z) for z in tz], [(sg * Wk, 0, z) for z in tz], None, s.col((88, 84, 84)))
    if rng.random() < st.p_grass_strip:  # a grass strip between curb and sidewalk
        z0 = rng.uniform(3, 15)
        s.faces([ground_rect(sg * (R + .2), sg * (R + rng.uniform(1, 2)), z0, z0 + rng.uniform(10, 40))], TERRAIN,
                s.col(st.grass))
    if rng.random() < st.p_parking:  # a parking strip (void in Cityscapes), mostly with parked cars
        z0 = rng.uniform(5, 12)
        z1 = z0 + rng.uniform(12, 30)
        s.faces([ground_rect(sg * (R - 2.2), sg * R, z0, z1)], PARKING, s.col((104, 100, 102)))
        for z in np.arange(z0 + .3, z1 - 4.4, rng.uniform(5, 7)):
            if rng.random() < st.p_parked:
                objs.append((z, partial(vehicle, s, sg * (R - 1.1), z, CAR, 1.8, rng.uniform(1.4, 1.6), 4.4)))
    z0 = 1.0
    while F > Wk and z0 < zfar:  # verge: grass, bare ground (void) or paving
        z1, kind = z0 + rng.uniform(6, 25), rng.choice([TERRAIN, GROUND, SIDEWALK], p=st.verge_p)
        colour = s.col({TERRAIN: st.grass, GROUND: st.soil, SIDEWALK: st.walk}[kind])
        s.faces([ground_rect(sg * Wk, sg * F, z0, z1)], kind, colour)
        z0 = z1
    _facades(s, sg, F, zfar, green)
    _edges(s, sg, Wk, zfar)
    if rng.random() < st.trees * green + 0.05:  # a row of street trees
        Xt = sg * (Wk - 0.7 if F - Wk < 1.5 else (Wk + F) / 2)
        for z in np.arange(rng.uniform(4, 12), 70, rng.uniform(*st.tree_gap)):
            objs.append((z, partial(tree, s, Xt, z)))
    for z in np.arange(rng.uniform(15, 32), 70 if rng.random() < st.p_poles else 0, rng.uniform(*st.pole_gap)):
        objs.append((z, partial(pole, s, sg * (R + 0.35), z, sg)))
    for _ in range(rng.integers(*st.n_static)):  # bins, boxes, advertising columns: 'static' void
        z, wd, hg = rng.uniform(8, 40), rng.uniform(0.4, 1.2), rng.uniform(0.5, 2.8)
        Xs, colour = sg * rng.uniform(R + .7, Wk - .3), s.col((90, 100, 92), 30)
        objs.append((z, partial(s.faces, [front_rect(Xs - wd / 2, Xs + wd / 2, 0, hg, z)], STATIC, colour)))


def _scene(rng, h, w, rare, st):
    """Draw one street scene; `rare` lists the rare vehicle classes this image must contain."""
    s = Scene(rng, h, w, st)
    zfar, green = rng.uniform(70, 140), rng.uniform(0, 1)  # length of the street, how leafy it is
    sky = np.asarray(s.col(st.skies[rng.integers(len(st.skies))], 12))
    ramp = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    s.img[:], s.lab[:] = sky * (1 - 0.5 * ramp) + 0.5 * ramp * st.haze, SKY
    s.fill([[(0, s.yh), (w, s.yh), (w, h), (0, h)]], ROAD, s.col(st.road))
    sides, objs = [], []  # objs: (distance, draw call), drawn far to near after the background
    for sg in (-1, 1):
        R = rng.uniform(*st.road_half)
        Wk = R + rng.uniform(*st.walk_w)
        sides.append((sg, R, Wk, Wk + (rng.uniform(1, 4) if rng.random() < 0.5 else 0)))
    (_, Rl, _, Fl), (_, Rr, _, Fr) = sides
    kind = VEG if rng.random() < 0.3 * green else BUILDING  # the far end of the street
    s.faces([front_rect(-Fl - 10, Fr + 10, 0, rng.uniform(7, 22), zfar)], kind,
            s.col(st.leaf if kind == VEG else st.facades[0], 18))
    if rng.random() < 0.5:  # unidentifiable clutter at the far end: 'unlabeled'
        s.faces([front_rect(-Fl, -Fl + rng.uniform(2, 8), 0, rng.uniform(2, 5), zfar - 1)], UNLABELED,
                s.col((90, 90, 90), 30))
    for side in sides:
        _street_side(s, *side, zfar, green, objs)
    mark, lw, xc = s.col((200, 200, 196), 20), max(0.15, s.m(1.0, 8)), (Rr - Rl) / 2  # lane markings
    s.faces([ground_rect(xc - lw / 2, xc + lw / 2, z, z + 3) for z in np.arange(rng.uniform(2, 8), zfar, 9.0)] +
            [ground_rect(x - lw / 2, x + lw / 2, 1, zfar) for x in (-Rl + .3, Rr - .3)], None, mark)
    taken = []  # rare vehicles go first, each in its own lane, and nearer cars keep out of their way
    lanes, lo, hi = rng.permutation(len(rare)), -Rl + 1.4, Rr - 1.4
    for label, lane in zip(rare, lanes):
        w_, h_, L, zr = {TRUCK: (2.5, rng.uniform(3.2, 3.8), rng.uniform(7, 11), (28, 47)),
                         BUS: (2.55, rng.uniform(3.0, 3.3), 12.0, (28, 46)),
                         TRAIN: (2.65, 3.5, rng.uniform(25, 35), (33, 52)), MOTO: (1.6, 0, 0, (14, 30))}[label]
        X, z = lo + (lane + rng.uniform(0.2, 0.8)) * (hi - lo) / len(rare), rng.uniform(*zr)
        taken.append((X - w_ / 2 - 1.5, X + w_ / 2 + 1.5, z))
        draw = partial(two_wheeler, s, X, z, MOTO) if label == MOTO else partial(vehicle, s, X, z, label, w_, h_, L)
        objs.append((z, draw))
    for _ in range(rng.poisson(st.cars)):
        X, z = rng.uniform(-Rl + 1, Rr - 1), rng.uniform(9, 60)
        if not any(a < X < b and z < zt for a, b, zt in taken):
            objs.append((z, partial(vehicle, s, X, z, CAR, 1.8, rng.uniform(1.4, 1.6), 4.4)))
    parked_bike = partial(two_wheeler, label=BIKE, ridden=False)
    people = rng.integers(*st.n_people)
    for n, draw, zr in ((people, person, (5, 25)), (rng.integers(*st.n_bikes), parked_bike, (8, 32))):
        for _ in range(n):  # pedestrians and parked bicycles on the sidewalks
            sg, R, Wk, _ = sides[rng.integers(2)]
            X, z = sg * rng.uniform(R + 0.6, Wk - 0.3), rng.uniform(*zr)
            objs.append((z, partial(draw, s, X, z)))
    if rng.random() < st.p_cyclist:  # a cyclist at the road edge
        X, z = rng.choice([-Rl + 0.8, Rr - 0.8]), rng.uniform(10, 28)
        objs.append((z, partial(two_wheeler, s, X, z, BIKE)))
    for _, draw in sorted(objs, key=lambda o: -o[0]):
        draw()
    if st.hood:  # the ego vehicle's hood, with a highlight
        eh, xs = h * rng.uniform(0.07, 0.1), np.linspace(0, w, 17)
        hood = np.stack([xs, h - eh * (1 - 0.6 * (2 * xs / w - 1) ** 2)], 1)
        s.fill([np.vstack([hood, [(w, h), (0, h)]])], EGO, s.col((34, 36, 42), 8))
        s.fill([np.vstack([hood, hood[::-1] + (0, h / 128)])], None, s.col((90, 92, 98), 15))
    return s


def render(seed, split_index, index, height=128, width=256, rare=(), domain="city"):
    """RGB image and labelIds of one scene, drawn from its own generator [seed, split_index, index, *key]."""
    st = DOMAINS[domain]
    rng = np.random.default_rng([seed, split_index, index, *st.key])
    return st.finish(_scene(rng, height, width, tuple(rare), st))
