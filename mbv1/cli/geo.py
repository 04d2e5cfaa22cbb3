"""CLI of photo geolocation (Table 11): ``mbv1 geolocate``, ``mbv1 data geo-synthetic``,
``mbv1 data geo-partition``. Training and evaluation go through the engine's generic
``mbv1 train geolocation`` / ``mbv1 eval geolocation``.

Thin: every command parses options and calls one library function. No torch import at module
level.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from mbv1.cli import common
from mbv1.errors import MBV1Error


def geolocate(
    sources: Annotated[list[str], typer.Argument(help="Images, folders or glob patterns.")],
    weights: Annotated[Path, typer.Option("--weights", "-w", help="Geolocation checkpoint or run folder (mbv1 train geolocation).")],
    top_k: Annotated[int, typer.Option("--top-k", "-k", help="Cells to show per image.")] = 5,
    partition: Annotated[Path | None, typer.Option(help="Partition file to use; refused unless it is the checkpoint's own.")] = None,
    batch_size: Annotated[int, typer.Option(help="Images per forward pass.")] = 32,
    device: common.DeviceOpt = "auto",
    backend: Annotated[common.Backend, typer.Option(help=common.BACKEND_HELP)] = common.Backend.auto,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
):
    """Where was each photo taken: lat, lon, nearest place, top-k cells with probabilities.

    Photos that carry EXIF GPS also get the great-circle error of the prediction.
    """
    from mbv1.datasets.folder import expand_sources
    from mbv1.geo.predictor import Geolocator

    if top_k < 1:
        raise MBV1Error(f"--top-k must be at least 1; got {top_k}")
    paths = expand_sources(sources)
    geo = Geolocator(weights, device, partition, backend.value, warn=common.warn)
    common.leave_cores_to_runtimes(geo.backend)
    answers = list(geo.locate(paths, top_k, batch_size))
    if json_out:
        common.print_json([a.to_dict() for a in answers])
    else:
        print_located(answers)
    if any(a.error for a in answers):
        sys.exit(1)


def print_located(answers) -> None:
    c = common.console()
    for a in answers:
        if a.error:
            c.print(f"[red]{escape(a.path)}: {escape(a.error)}[/]")
            continue
        pl = a.place
        c.print(f"[bold]{escape(a.path)}[/]: {a.lat:.4f}, {a.lon:.4f} — near "
                f"{escape(pl.name)}, {escape(pl.country)} ({escape(pl.continent)}), "
                f"{pl.distance_km:,.0f} km from it")
        if a.exif is not None:
            c.print(f"  EXIF GPS {a.exif[0]:.4f}, {a.exif[1]:.4f}: the prediction is "
                    f"{a.error_km:,.1f} km away")
        cells = ", ".join(f"{x['token']} (level {x['level']}, {x['lat']:.2f}, {x['lon']:.2f}) "
                          f"{100 * x['prob']:.1f}%" for x in a.cells)
        c.print(f"  top cells: {cells}")


def data_geo_synthetic(
    out: Annotated[Path, typer.Argument(help="Output folder.")],
    train: Annotated[int, typer.Option(help="Training photos.")] = 1500,
    test: Annotated[int, typer.Option(help="Test photos.")] = 300,
    size: Annotated[int, typer.Option(help="Image side in pixels.")] = 64,
    seed: Annotated[int, typer.Option(help="Everything random derives from it.")] = 0,
    region_level: Annotated[int, typer.Option(help="S2 level of the cells sharing a texture (2: ~2,000 km).")] = 2,
    jitter_km: Annotated[float, typer.Option(help="Std of each photo's offset from its city centre, km.")] = 3.0,
    max_cities: Annotated[int | None, typer.Option(help="Draw only among the N most populous cities (default: all ~34k of 15,000+ people).")] = None,
    no_exif: Annotated[bool, typer.Option("--no-exif", help="Do not write GPS into the JPEGs' EXIF.")] = False,
):
    """Write a synthetic geotagged set: JPEGs with EXIF GPS, train.csv and test.csv.

    Locations are GeoNames cities drawn by population; the look depends on the place.
    """
    from mbv1.geo.synthetic import make_synthetic_geo

    s = make_synthetic_geo(out, num_train=train, num_test=test, size=size, seed=seed,
                           region_level=region_level, jitter_km=jitter_km, write_exif=not no_exif,
                           max_cities=max_cities)
    common.console().print(f"wrote {s.num_train:,} train and {s.num_test:,} test photos "
                           f"({size}x{size} JPEG{'' if no_exif else ' with EXIF GPS'}, "
                           f"{s.num_regions} S2 level-{region_level} regions) with {s.train_csv.name} "
                           f"and {s.test_csv.name} to {out}", markup=False)


def data_geo_partition(
    source: Annotated[str, typer.Argument(help="Training data (CSV, EXIF folder, folder with train.csv) to build from, or a geolocation checkpoint / run folder to export from.")],
    out: Annotated[Path, typer.Argument(help="Partition file to write (.csv or .json).")],
    t1: Annotated[int, typer.Option(help="Split a cell holding more than t1 photos (PlaNet: 10,000).")] = 10_000,
    t2: Annotated[int, typer.Option(help="Drop cells holding fewer than t2 photos (PlaNet: 50).")] = 50,
    min_level: Annotated[int, typer.Option(help="Coarsest S2 level.")] = 0,
    max_level: Annotated[int, typer.Option(help="Finest S2 level.")] = 30,
):
    """Build PlaNet's adaptive S2 partition from training photos (or export a checkpoint's)."""
    from mbv1.geo.cells import build_partition

    if out.suffix.lower() not in (".csv", ".json"):
        raise MBV1Error(f"the partition file must end in .csv or .json; got {out.name}")
    src = Path(source)
    if src.suffix in (".pt", ".pth") or (src.is_dir() and any((src / n).is_file()
                                                             for n in ("best.pt", "last.pt"))):
        from mbv1.checkpoint import load_checkpoint
        from mbv1.geo.cells import partition_from_meta

        part = partition_from_meta(load_checkpoint(src, task="geolocation").get("meta") or {},
                                   str(src))
        what = f"the partition of {source}"
    else:
        from mbv1.geo import sources

        train = sources.training_splits(source, val_split=0.0).train
        sources.report_skipped(train)
        part = build_partition(train.records.lat, train.records.lon, t1=t1, t2=t2,
                               min_level=min_level, max_level=max_level)
        inside = int((part.assign(train.records.lat, train.records.lon) >= 0).sum())
        what = (f"{len(part):,} cells (S2 levels {part.levels.min()}–{part.levels.max()}) from "
                f"{train.name}, t1={t1}, t2={t2}; {inside:,} photos inside a cell")
    part.save(out)
    common.console().print(f"wrote {what} to {out}; sha256 {part.sha256}", markup=False)


def register(app: typer.Typer, data_app: typer.Typer) -> None:
    """Add ``geolocate`` to the ``mbv1`` app and the geo data commands to ``mbv1 data``."""
    app.command("geolocate")(geolocate)
    data_app.command("geo-synthetic")(data_geo_synthetic)
    data_app.command("geo-partition")(data_geo_partition)
