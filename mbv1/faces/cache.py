"""A folder of face crops with their provenance: what the face tasks train and evaluate on.

Layout of a crop cache (``extract_faces`` writes it; safe to rerun: sources already in it are
skipped)::

    <root>/meta.json       the pipeline settings and the sources done (path, stride, faces)
    <root>/faces.jsonl     one line per face, in extraction order (see FaceRecord)
    <root>/crops/<id>.png  canonical crop (aligned or box, 160x160 by default)
    <root>/attr/<id>.png   face-api's crop of the detection box (exact frame pixels)
    <root>/targets-*.npz   teacher outputs per face (mbv1.faces.targets), made on demand

Identities (for verification pairs) follow the source: a video face's identity is its track
(``<video>#t<k>``), a photo in an identity folder (``root/<person>/x.jpg``, LFW layout) gives
its largest face the folder's name, any other photo face is its own identity
(``<file>#f<k>``). ``group`` says where two different identities are known to be different
people: faces of the same frame or photo always are; faces of different groups are taken to
be (different sources); two identities of one group in different frames are *unknown* (the
same person may appear in two photos of an album, or re-enter a video) and make no pair.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mbv1.errors import MBV1Error

__all__ = ["CropCache", "FaceRecord", "extract_faces"]

INDEX = "faces.jsonl"
META = "meta.json"
VERSION = 1


@dataclass
class FaceRecord:
    """One cached face. ``box_xyxy`` and ``landmarks`` are frame pixels; ``frame`` counts
    decoded frames of a video (or images of a folder source); ``identity`` / ``group`` define
    verification pairs (module docstring)."""

    id: str
    source: str
    file: str
    frame: int
    time_s: float | None
    face: int
    box_xyxy: list[float]
    score: float
    landmarks: list[list[float]] | None
    method: str
    attr_box: list[int] | None
    identity: str | None
    group: str

    @property
    def frame_key(self) -> str:
        return f"{self.file}@{self.frame}"


class CropCache:
    """Read access to a crop cache folder (see the module docstring)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        meta = self.root / META
        if not meta.exists():
            raise MBV1Error(f"{self.root} is not a face crop cache (no {META}); pass the photos "
                            "or videos themselves as --data (their crops are cached once)")
        self.meta = json.loads(meta.read_text())
        self.records = _read_index(self.root / INDEX)

    def __len__(self) -> int:
        return len(self.records)

    def crop_path(self, i: int) -> Path:
        return self.root / "crops" / f"{self.records[i].id}.png"

    def attr_path(self, i: int) -> Path:
        return self.root / "attr" / f"{self.records[i].id}.png"

    def crop(self, i: int) -> np.ndarray:
        """Canonical crop ``uint8 [S, S, 3]`` RGB of face ``i``."""
        return _read_png(self.crop_path(i))

    def attr_crop(self, i: int) -> np.ndarray | None:
        p = self.attr_path(i)
        return _read_png(p) if p.exists() else None

    def sources(self) -> list[str]:
        """Distinct sources, in extraction order."""
        seen: dict[str, None] = {}
        for r in self.records:
            seen.setdefault(r.source, None)
        return list(seen)

    def indices(self, sources: Iterable[str] | None = None) -> list[int]:
        if sources is None:
            return list(range(len(self.records)))
        want = set(sources)
        return [i for i, r in enumerate(self.records) if r.source in want]


def _read_index(path: Path) -> list[FaceRecord]:
    if not path.exists():
        return []
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(FaceRecord(**json.loads(line)))
        except (TypeError, ValueError) as e:
            raise MBV1Error(f"{path}:{n}: not a face record ({e}); delete the cache and "
                            "extract again") from None
    return out


def _read_png(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.array(im.convert("RGB"))
    except (OSError, ValueError) as e:
        raise MBV1Error(f"cannot read face crop {path}: {e}; delete the cache and extract "
                        "again") from None


def _write_png(path: Path, rgb: np.ndarray) -> None:
    from PIL import Image

    tmp = path.with_name(f".{path.name}.tmp")
    Image.fromarray(np.ascontiguousarray(rgb)).save(tmp, format="PNG", compress_level=1)
    os.replace(tmp, path)


def _identity_folder(path: Path, root: Path | None) -> str | None:
    """``root/<person>/.../x.jpg`` → ``<person>`` (LFW layout); None for photos at the root."""
    if root is None:
        return None
    try:
        rel = path.relative_to(root)
    except ValueError:
        return None
    return rel.parts[0] if len(rel.parts) > 1 else None


def extract_faces(sources: Iterable[str | Path | dict], root: str | Path, finder,
                  vid_stride: int = 1, max_frames: int | None = None,
                  progress: Callable[[str, int, int | None, int], None] | None = None,
                  warn: Callable[[str], None] | None = None) -> CropCache:
    """Detect, align and cache the faces of ``sources`` into ``root``; returns the cache.

    Args:
        sources: images, folders, globs or videos (``mbv1.media.resolve_source``), or dicts
            ``{"source": ..., "group": ..., "identity": ..., "identity_root": ..., "vid_stride":
            ...}`` to name the group, name the person of every frame's largest face (a video
            or photo of one person; other faces keep their own identities), name the folder whose subfolders are identities, or set a stride.
        root: cache folder (created; sources already in it with the same settings are skipped).
        finder: a :class:`mbv1.faces.pipeline.FaceFinder`.
        vid_stride: every N-th video frame.
        max_frames: stop a source after this many processed frames.
        progress: ``progress(source, frames_done, frames_total, faces_found)``, counted over
            all sources still to extract (``frames_total`` None when unknown, e.g. a camera),
            e.g. :class:`mbv1.faces.sources.ExtractionProgress`.
    """
    root = Path(root)
    (root / "crops").mkdir(parents=True, exist_ok=True)
    (root / "attr").mkdir(exist_ok=True)
    meta_path = root / META
    settings = finder.describe()
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else None
    if meta is not None and meta.get("pipeline") != settings:
        raise MBV1Error(f"face cache {root} was made with other settings ({meta.get('pipeline')}); "
                        "use another folder or delete it")
    if meta is None:
        meta = {"format": "mbv1-face-crops", "version": VERSION, "pipeline": settings,
                "sources": {}}
    specs = [dict(s) if isinstance(s, dict) else {"source": str(s)} for s in sources]
    done = meta["sources"]
    for spec in specs:  # a source asked for with other settings is extracted again
        name = str(spec["source"])
        if name in done and done[name].get("key") != _key(spec, vid_stride, max_frames):
            del done[name]
    if all(str(spec["source"]) in done for spec in specs) and meta_path.exists():
        return CropCache(root)  # nothing to do: leave the files alone (other readers)
    # Keep only records of finished sources (an interrupted one starts over).
    records = [r for r in _read_index(root / INDEX) if r.source in done]
    next_id = len(records)
    with open(root / INDEX, "w") as f:
        f.writelines(json.dumps(asdict(r)) + "\n" for r in records)
    pending = [spec for spec in specs if str(spec["source"]) not in done]
    counts = [_frame_count(spec, int(spec.get("vid_stride", vid_stride)), max_frames)
              for spec in pending] if progress else []
    total = None if None in counts else sum(counts)
    before = [0, 0]  # frames and faces of the sources finished in this call

    def source_progress(name: str, frames: int, faces: int) -> None:
        progress(name, before[0] + frames, total, before[1] + faces)

    with open(root / INDEX, "a") as index:
        for spec in pending:
            name = str(spec["source"])
            frames, n = _extract_source(spec, root, finder, index, next_id,
                                        int(spec.get("vid_stride", vid_stride)), max_frames,
                                        source_progress if progress else None, warn)
            before[0] += frames
            before[1] += n
            next_id += n
            done[name] = {"key": _key(spec, vid_stride, max_frames), "frames": frames,
                          "faces": n, "group": str(spec.get("group") or name)}
            _write_json(meta_path, meta)
    _write_json(meta_path, meta)
    return CropCache(root)


def _extract_source(spec: dict, root: Path, finder, index, next_id: int, stride: int,
                    max_frames: int | None, progress, warn) -> tuple[int, int]:
    """Faces of one source appended to the open index; returns (frames, faces)."""
    from mbv1.faces.pipeline import Tracker
    from mbv1.media import iter_frames, resolve_source

    name = str(spec["source"])
    src = resolve_source(name)
    base = (Path(spec["identity_root"]) if spec.get("identity_root")
            else Path(name) if Path(name).is_dir() else None)
    group = str(spec.get("group") or name)
    tracker = Tracker() if src.is_video else None
    frames = n = 0
    for frame in iter_frames(src, stride, warn=warn):
        faces = finder(frame.rgb)
        file = str(frame.path) if frame.path else name
        tracks = tracker.update(np.array([f.box_xyxy for f in faces])) if tracker else None
        largest = max(range(len(faces)), key=lambda k: faces[k].area) if faces else -1
        folder_id = None if src.is_video else _identity_folder(Path(file), base)
        for k, fc in enumerate(faces):
            if spec.get("identity") and k == largest:
                identity = str(spec["identity"])  # the person is the frame's largest face
            elif tracks is not None:
                identity = f"{Path(name).name}#t{tracks[k]}"
            elif folder_id is not None:
                identity = folder_id if k == largest else None
            else:
                identity = f"{Path(file).name}#f{k}"
            rid = f"{next_id + n:06d}"
            n += 1
            _write_png(root / "crops" / f"{rid}.png", fc.crop)
            if fc.attr_crop is not None:
                _write_png(root / "attr" / f"{rid}.png", fc.attr_crop)
            rec = FaceRecord(
                id=rid, source=name, file=file, frame=frame.index,
                time_s=None if frame.time_s is None else round(frame.time_s, 4), face=k,
                box_xyxy=[round(float(v), 2) for v in fc.box_xyxy], score=round(fc.score, 5),
                landmarks=None if fc.landmarks is None else np.round(fc.landmarks, 2).tolist(),
                method=fc.method, attr_box=None if fc.attr_box is None else list(fc.attr_box),
                identity=identity, group=group)
            index.write(json.dumps(asdict(rec)) + "\n")
        frames += 1
        if progress:
            progress(name, frames, n)
        if max_frames and frames >= max_frames:
            break
    index.flush()
    return frames, n


def _frame_count(spec: dict, stride: int, max_frames: int | None) -> int | None:
    """Frames :func:`_extract_source` will process for ``spec`` (None: unknown)."""
    from mbv1.media import resolve_source

    src = resolve_source(str(spec["source"]))
    if src.kind == "images":
        n = len(src.paths)
    elif src.frame_count:
        n = -(-src.frame_count // stride)
    else:
        return None
    return min(n, max_frames) if max_frames else n


def _key(spec: dict, vid_stride: int, max_frames: int | None) -> str:
    return json.dumps([str(spec["source"]), int(spec.get("vid_stride", vid_stride)), max_frames,
                       spec.get("group"), spec.get("identity")])


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)
