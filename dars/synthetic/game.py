"""The "game" domain: the stand-in for GTA5 in the GTA5 -> Cityscapes unsupervised domain adaptation setting.

Same 19 classes and the same scene semantics as the city domain (labels transfer), but rendered the way a
game engine differs from a car camera in Germany: a saturated, warm palette (stucco and terracotta facades,
bright car paints, dry yellow grass, deep blue sky fading to a warm haze), hard sunny lighting with higher
contrast and saturation and no lens blur, smooth surfaces with clean large-scale shading instead of sensor
grain, and other stripe patterns (tyre tracks along the road, floor bands on facades). Its layout has GTA5-
like class shares relative to Cityscapes: wider roads and narrower sidewalks, lower buildings and a lower
camera pitch (more sky), more cars, trucks and buses, fewer poles, signs, lights, pedestrians and bicycles,
more terrain and less vegetation, and no ego-vehicle hood.
"""
import cv2
import numpy as np

from . import draw
from .style import Style

# Multiplicative texture amplitude per labelId of [pixel noise, vertical streaks, smooth blotches, horizontal
# bands]: low grain everywhere (rendered, not photographed); streaks and bands are patterns the city lacks.
GAME_TEXTURE = np.tile(np.float32([[.01], [0], [.03], [0]]), (1, 256))
for _lid, _amp in {draw.ROAD: (.01, .07, .06, 0), draw.SIDEWALK: (.015, 0, .05, 0), draw.BUILDING: (.01, 0, .05, .1),
                   draw.WALL: (.02, 0, .05, .14), draw.FENCE: (.03, .16, 0, 0), draw.TERRAIN: (.03, .1, .16, 0),
                   draw.VEG: (.03, 0, .28, 0), draw.SKY: (0, 0, .04, 0), draw.GROUND: (.04, 0, .12, 0),
                   draw.PARKING: (.02, .06, .04, 0)}.items():
    GAME_TEXTURE[:, _lid] = _amp


def game_tint(colour):
    """Fixed colours as a game renders them: more saturated around their luma, a little warmer."""
    r, g, b = (float(v) for v in colour)
    y = 0.299 * r + 0.587 * g + 0.114 * b
    return tuple(min(255.0, max(0.0, y + 1.2 * (v - y) + o)) for v, o in ((r, 4), (g, 1), (b, -5)))


def finish_game(s):
    """Game textures (by labelId), then hard warm sunlight: contrast and saturation up, no blur, little noise."""
    rng, h, w = s.rng, s.h, s.w
    fine = rng.standard_normal((h, w), dtype=np.float32)
    streak = cv2.blur(fine, (1, max(3, h // 10)))  # vertical: tyre tracks, planks, grass blades
    streak /= streak.std() + 1e-6
    blob = cv2.resize(rng.standard_normal((h // 32 + 2, w // 32 + 2), dtype=np.float32), (w, h),
                      interpolation=cv2.INTER_CUBIC)  # large, smooth shading
    period = max(4.0, h / 14) * rng.uniform(0.8, 1.25)  # floor bands, scaled with the resolution
    band = np.sin(2 * np.pi * np.arange(h, dtype=np.float32) / period + rng.uniform(0, 2 * np.pi))[:, None]
    amp = GAME_TEXTURE[:, s.lab]
    tex = 1 + amp[0] * fine + amp[1] * streak + amp[2] * blob + amp[3] * band
    gain = (rng.uniform(0.95, 1.12) * np.float32([1.05, 1.0, 0.92]) * rng.uniform(0.98, 1.02, 3)).astype(np.float32)
    img = s.img * tex[..., None] * gain
    mean = img.mean()
    img = mean + (img - mean) * np.float32(rng.uniform(1.1, 1.3))  # contrast
    grey = img.mean(-1, keepdims=True)
    img = grey + (img - grey) * np.float32(rng.uniform(1.05, 1.25))  # saturation
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(rng.uniform(0.3, 1.0))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), s.lab


GAME = Style(
    name="game",
    road=(70, 68, 72), walk=(176, 166, 150), wall=(168, 142, 110), pole=(70, 74, 70), fence=(150, 118, 80),
    grass=(156, 160, 64), leaf=(46, 112, 34), soil=(164, 120, 80),
    facades=((214, 180, 140), (190, 110, 80), (230, 220, 196), (140, 156, 176), (200, 150, 110), (122, 100, 90)),
    vehicles=((200, 30, 30), (240, 240, 236), (20, 20, 22), (30, 70, 170), (230, 180, 20), (40, 120, 70),
              (160, 160, 168), (120, 20, 60)),
    clothes=((210, 60, 40), (40, 40, 40), (60, 90, 180), (230, 220, 200), (180, 150, 60), (90, 50, 120),
             (30, 110, 100)),
    skies=((60, 130, 230), (90, 160, 240), (200, 184, 160)), haze=np.float32([250, 200, 150]), tint=game_tint,
    finish=finish_game,
    horizon=(0.42, 0.52), focal=1.0, hood=False,
    road_half=(4.5, 8.0), walk_w=(2.4, 4.4), building_h=(6, 18),
    p_grass_strip=0.2, p_parking=0.6, p_parked=0.9, verge_p=(.6, .15, .25), p_park=0.25,
    edge_p=(.22, .12, .06, .6), trees=0.5, tree_gap=(10, 20), p_poles=0.45, pole_gap=(35, 60), p_light=0.35,
    p_sign=0.5, n_static=(0, 3), cars=6.5, n_people=(1, 5), n_bikes=(0, 2), p_cyclist=0.15,
    rare={draw.TRUCK: 0.3, draw.BUS: 0.3, draw.TRAIN: 0.05, draw.MOTO: 0.2}, key=(1,),
)
