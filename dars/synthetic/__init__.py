"""The embedded synthetic street-scene datasets (`python -m dars synthesize`).

dataset.py writes a dataset tree (city: Cityscapes layout; game: GTA5 layout) and holds the
command; scene.py lays out and renders one street scene; draw.py holds the labelIds, the
camera and the canvas; objects.py the things in the street; style.py a domain's knobs and the
city domain's values; game.py the game domain (the GTA5 stand-in).
"""
from .dataset import COMMANDS, TRAIN_CITIES, VAL_CITIES, generate, rare_plan
from .scene import DOMAINS, render

__all__ = ["COMMANDS", "DOMAINS", "TRAIN_CITIES", "VAL_CITIES", "generate", "rare_plan", "render"]
