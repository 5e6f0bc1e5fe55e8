"""The 19 Cityscapes evaluation classes, their colours, id mappings and real pixel shares."""
import numpy as np

IGNORE = 255
NUM_CLASSES = 19

CLASS_NAMES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light",
    "traffic sign", "vegetation", "terrain", "sky", "person", "rider", "car",
    "truck", "bus", "train", "motorcycle", "bicycle",
)

# Official Cityscapes colours, indexed by trainId.
PALETTE = np.array([
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
    (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
    (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70),
    (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32),
], dtype=np.uint8)

# labelId of each trainId (Cityscapes labels.py); every other labelId is void.
TRAINID_TO_LABELID = np.array(
    [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33], dtype=np.uint8)

LABELID_TO_TRAINID = np.full(256, IGNORE, dtype=np.uint8)
LABELID_TO_TRAINID[TRAINID_TO_LABELID] = np.arange(NUM_CLASSES, dtype=np.uint8)

# Share of each trainId among labeled (non-void) Cityscapes train pixels (public tables).
CITYSCAPES_PIXEL_SHARE = np.array([
    .36981, .05994, .22731, .00667, .00871, .01271, .00206, .00567, .16172, .01108,
    .03958, .01244, .00146, .06786, .00272, .00257, .00216, .00096, .00456,
])


def label_ids_to_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Map a Cityscapes labelIds map (uint8) to trainIds; void becomes 255."""
    return LABELID_TO_TRAINID[label_ids]


def train_ids_to_label_ids(train_ids: np.ndarray) -> np.ndarray:
    """Map trainIds back to labelIds for the official evaluator; ignore becomes 0 (unlabeled)."""
    lut = np.zeros(256, dtype=np.uint8)
    lut[:NUM_CLASSES] = TRAINID_TO_LABELID
    return lut[train_ids]


def colorize(train_ids: np.ndarray) -> np.ndarray:
    """RGB rendering of a trainId map in Cityscapes colours, ignore in black."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[:NUM_CLASSES] = PALETTE
    return lut[train_ids]
