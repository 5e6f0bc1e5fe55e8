"""The class prior pi: each class's share of the non-void labeled ground-truth pixels."""
from .classes import CLASS_NAMES, NUM_CLASSES
from .data.cityscapes import class_pixel_counts, read_list
from .io import DarsError, write_json


def prior_stage(root, list_file, out_json, source="labeled"):
    """Count trainIds over the labels of `list_file` (images relative to `root`) into prior.json."""
    pairs = read_list(list_file, root)
    counts, void = class_pixel_counts(root, pairs, NUM_CLASSES)
    total = int(counts.sum())
    if total == 0:
        raise DarsError(f"{list_file}: the listed labels hold no non-void pixels; cannot estimate a prior")
    write_json(out_json, {
        "source": source, "list": str(list_file), "class_names": list(CLASS_NAMES),
        "counts": counts.tolist(), "shares": (counts / total).tolist(),
        "num_pixels": total, "void_pixels": void,
    })
