"""Pairing in both directions: a split's images and labels are compared both ways, so that a
missing image folder (or label folder) is an error, not a split silently scored on fewer images.

Listing is driven by one side (Cityscapes and GTA5: the images; VOC: its list file); each layout
also lists the other side and hands both leftovers to `check_paired`. The error it raises,
Unpaired, carries the complete pairs, so that a stage told `allow_unpaired` (the config key
`datasets.<name>.allow_unpaired: true`) can go on with them under a recorded warning
(dars.data.splits.listed_pairs)."""
from ..io import DarsError

UNPAIRED_KEY = "datasets.<name>.allow_unpaired"


class Unpaired(DarsError):
    """Images without labels or labels without images; `pairs` are the complete ones."""

    def __init__(self, message, pairs):
        super().__init__(message)
        self.pairs = pairs


def check_paired(pairs, labels_alone, images_alone, where, image_folder, label_folder, also=None):
    """`pairs` if no label lacks its image and no image its label; else Unpaired naming the
    counts, an example of each and the folder where the partner was looked for. `also`: a
    DarsError the listing found besides (labels still to prepare), raised in any case, with the
    unpaired files named first; `allow_unpaired` does not waive it."""
    problems = []
    if labels_alone:
        problems.append(f"{len(labels_alone)} labels have no image in {image_folder} (e.g. {sorted(labels_alone)[0]})")
    if images_alone:
        problems.append(f"{len(images_alone)} images have no label in {label_folder} (e.g. {sorted(images_alone)[0]})")
    if problems and also is not None:
        raise DarsError(f"{where}: {'; '.join(problems)}; and {also}")
    if also is not None:
        raise also
    if problems:
        raise Unpaired(f"{where}: {'; '.join(problems)}. A folder is missing or incomplete: restore it, or set "
                       f"`{UNPAIRED_KEY}: true` to go on with the {len(pairs)} complete pairs (a warning "
                       "recorded in split.json and miou.json)", pairs)
    return pairs
