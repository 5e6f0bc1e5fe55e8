"""The 19 Cityscapes evaluation classes, their colours, id mappings and real pixel shares;
below them, the class set of every supported dataset layout (Cityscapes, GTA5, ScanNet, VOC).
Code outside dars.data names and colours classes through a layout's ClassSet
(dars.data.layouts.class_set), never through the Cityscapes constants."""
from dataclasses import dataclass

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


# ---- Class sets of every supported dataset layout ---------------------------------------------


@dataclass(frozen=True, eq=False)
class ClassSet:
    """Names and colours of the train ids 0..num_classes-1 of one layout (255 = ignore)."""
    name: str
    names: tuple
    palette: np.ndarray  # (num_classes, 3) uint8 RGB, read-only

    def __post_init__(self):
        palette = np.asarray(self.palette, dtype=np.uint8)
        if palette.shape != (len(self.names), 3):
            raise ValueError(f"class set {self.name}: palette shape {palette.shape} does not match "
                             f"{len(self.names)} classes")
        palette = palette.copy()
        palette.flags.writeable = False  # shared by every caller: nobody may recolour it in place
        object.__setattr__(self, "names", tuple(self.names))
        object.__setattr__(self, "palette", palette)

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def colorize(self, train_ids: np.ndarray) -> np.ndarray:
        """RGB rendering of a train-id map, ignore (and anything out of range) in black."""
        lut = np.zeros((256, 3), dtype=np.uint8)
        lut[: self.num_classes] = self.palette
        return lut[train_ids]


# ScanNet 20-class benchmark: NYU40 id of each train id, in benchmark order (datasets.md).
SCANNET_NYU40_IDS = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 24, 28, 33, 34, 36, 39],
                             dtype=np.int64)
SCANNET_CLASS_NAMES = (
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf",
    "picture", "counter", "desk", "curtain", "refrigerator", "shower curtain", "toilet", "sink",
    "bathtub", "other furniture",
)
# Colours the ScanNet benchmark scripts use for these NYU40 classes.
SCANNET_PALETTE = np.array([
    (174, 199, 232), (152, 223, 138), (31, 119, 180), (255, 187, 120), (188, 189, 34),
    (140, 86, 75), (255, 152, 150), (214, 39, 40), (197, 176, 213), (148, 103, 189),
    (196, 156, 148), (23, 190, 207), (247, 182, 210), (219, 219, 141), (255, 127, 14),
    (158, 218, 229), (44, 160, 44), (112, 128, 144), (227, 119, 194), (82, 84, 163),
], dtype=np.uint8)

NYU40_TO_SCANNET_TRAINID = np.full(256, IGNORE, dtype=np.uint8)
NYU40_TO_SCANNET_TRAINID[SCANNET_NYU40_IDS] = np.arange(len(SCANNET_NYU40_IDS), dtype=np.uint8)

VOC_CLASS_NAMES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)


def voc_palette(n=256) -> np.ndarray:
    """The PASCAL VOC colour map: the bits of the index, spread over the high bits of R, G, B."""
    palette = np.zeros((n, 3), dtype=np.uint8)
    for index in range(n):
        value, rgb = index, [0, 0, 0]
        for shift in range(7, -1, -1):  # bit 0 of each channel group goes to the top bit first
            for channel in range(3):
                rgb[channel] |= ((value >> channel) & 1) << shift
            value >>= 3
        palette[index] = rgb
    return palette


# The class sets of the dataset layouts (the CLASSES of each dars.data.<layout> module;
# dars.data.layouts.class_set(layout) is the resolver).
CITYSCAPES_CLASSES = ClassSet("cityscapes", CLASS_NAMES, PALETTE)
# GTA5 labels use Cityscapes labelIds, so the source domain shares the 19 target classes.
GTA5_CLASSES = ClassSet("gta5", CLASS_NAMES, PALETTE)
SCANNET_CLASSES = ClassSet("scannet", SCANNET_CLASS_NAMES, SCANNET_PALETTE)
VOC_CLASSES = ClassSet("voc", VOC_CLASS_NAMES, voc_palette(len(VOC_CLASS_NAMES)))
