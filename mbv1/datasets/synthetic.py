"""Small synthetic datasets written in real formats, for tests and trying the loaders.

``write_stanford_dogs`` writes the official Stanford Dogs tree (``Images/``, VOC XML
``Annotation/``, MATLAB ``lists/*.mat`` with 1-based labels) with one coloured "dog" box per
image on a textured background: every breed has its own colour, so it is learnable.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

DEFAULT_BREEDS = ("n02085620-Chihuahua", "n02085782-Japanese_spaniel", "n02085936-Maltese_dog",
                  "n02086079-Pekinese")
_VOC = """<annotation>
	<folder>{wnid}</folder>
	<filename>{stem}</filename>
	<source><database>ImageNet database</database></source>
	<size><width>{w}</width><height>{h}</height><depth>3</depth></size>
	<segment>0</segment>
	<object>
		<name>{breed}</name>
		<pose>Unspecified</pose>
		<truncated>0</truncated>
		<difficult>0</difficult>
		<bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox>
	</object>
</annotation>
"""


def write_stanford_dogs(root: str | Path, breeds=DEFAULT_BREEDS, train_per_class: int = 4,
                        test_per_class: int = 2, size: tuple[int, int] = (64, 48),
                        seed: int = 0) -> Path:
    """Write a synthetic Stanford Dogs tree under ``root``; returns ``root``."""
    from scipy.io import savemat

    root = Path(root)
    rng = np.random.default_rng(seed)
    w, h = size
    lists: dict[str, list] = {"train": [], "test": []}
    for label, folder in enumerate(sorted(breeds), start=1):
        wnid, breed = folder.split("-", 1)
        colour = tuple(int(c) for c in rng.integers(40, 255, 3))
        (root / "Images" / folder).mkdir(parents=True, exist_ok=True)
        (root / "Annotation" / folder).mkdir(parents=True, exist_ok=True)
        for k in range(train_per_class + test_per_class):
            stem = f"{wnid}_{1000 + k}"
            noise = rng.integers(0, 90, (h, w, 3), dtype=np.uint8)
            img = Image.fromarray(noise, "RGB")
            x0, y0 = int(rng.integers(0, w // 3)), int(rng.integers(0, h // 3))
            x1, y1 = x0 + w // 2, y0 + h // 2
            ImageDraw.Draw(img).rectangle((x0, y0, x1 - 1, y1 - 1), fill=colour)
            img.save(root / "Images" / folder / f"{stem}.jpg", quality=95)
            xml = _VOC.format(wnid=wnid, stem=stem, w=w, h=h, breed=breed, x0=x0, y0=y0, x1=x1,
                              y1=y1)
            (root / "Annotation" / folder / stem).write_text(xml)
            split = "train" if k < train_per_class else "test"
            lists[split].append((f"{folder}/{stem}.jpg", f"{folder}/{stem}", label))
    (root / "lists").mkdir(exist_ok=True)
    for split, rows in lists.items():
        files = np.empty((len(rows), 1), dtype=object)
        annotations = np.empty((len(rows), 1), dtype=object)
        for i, (f, a, _) in enumerate(rows):
            files[i, 0], annotations[i, 0] = np.array([f]), np.array([a])
        labels = np.array([[float(r[2])] for r in rows])  # MATLAB doubles, as distributed
        savemat(str(root / "lists" / f"{split}_list.mat"),
                {"file_list": files, "annotation_list": annotations, "labels": labels})
    return root
