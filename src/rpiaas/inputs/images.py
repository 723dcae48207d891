"""The scenario's ``images:`` key: the container images its tasks run, with their layers.

::

    images:
      app:1.0:
        layers:
          - {id: debian-base, size_mb: 48.0}
          - {id: app-1.0, size_mb: 12.5}
      tool:2.1: {size_mb: 30.0}        # one layer, its id the image's name

``size_mb``, when given beside ``layers``, must be their sum.  A layer id that two images
share is one layer (it must have one size): a node pulls and caches it once.  Every error
names the file, line and key.
"""

from __future__ import annotations

import math
from typing import Any

from ..model import Image, Layer
from .source import KeyPath, Source

__all__ = ["IMAGE_KEYS", "LAYER_KEYS", "MAX_IMAGES", "MAX_LAYERS", "MAX_LAYER_MB", "parse_images"]

IMAGE_KEYS = ("size_mb", "layers")
LAYER_KEYS = ("id", "size_mb")
MAX_IMAGES = 10_000  # images in one scenario
MAX_LAYERS = 256  # layers of one image (OCI registries allow 127 or so)
MAX_LAYER_MB = 1_000_000.0  # a terabyte: far above any real layer


def _size(src: Source, path: KeyPath, value: Any) -> float:
    size = src.number(path, value, positive=True)
    if size > MAX_LAYER_MB:
        src.fail(path, f"expected at most {MAX_LAYER_MB:,.0f} MB, got {size:g}")
    return size


def parse_images(src: Source, path: KeyPath, data: Any) -> dict[str, Image]:
    """The images of ``data`` (the ``images:`` mapping) by name."""
    given = src.mapping(path, data)
    if len(given) > MAX_IMAGES:
        src.fail(path, f"{len(given):,} images: at most {MAX_IMAGES:,}")
    sizes: dict[str, tuple[float, KeyPath]] = {}  # layer id -> its size, where first given
    out: dict[str, Image] = {}
    for raw_name, spec in given.items():
        ip: KeyPath = (*path, raw_name)
        name = src.string(ip, raw_name)
        if not name.strip() or any(c.isspace() for c in name):
            src.fail(ip, f"expected an image reference (name[:tag]) without spaces, got {name!r}")
        m = src.mapping(ip, spec, IMAGE_KEYS)
        if "layers" not in m and "size_mb" not in m:
            src.fail(ip, "missing key 'size_mb' (or give layers)")
        layers: list[Layer] = []
        if "layers" in m:
            seq = src.sequence((*ip, "layers"), m["layers"])
            if not seq:
                src.fail((*ip, "layers"), "expected at least one layer")
            if len(seq) > MAX_LAYERS:
                src.fail((*ip, "layers"), f"{len(seq)} layers: at most {MAX_LAYERS}")
            seen: set[str] = set()
            for i, raw in enumerate(seq):
                lp: KeyPath = (*ip, "layers", i)
                lm = src.mapping(lp, raw, LAYER_KEYS, required=LAYER_KEYS)
                lid = src.string((*lp, "id"), lm["id"])
                if not lid:
                    src.fail((*lp, "id"), "expected a layer id, got an empty string")
                if lid in seen:
                    src.fail((*lp, "id"), f"layer {lid!r} is twice in this image")
                seen.add(lid)
                size = _size(src, (*lp, "size_mb"), lm["size_mb"])
                layers.append(Layer(lid, size))
        else:
            layers.append(Layer(name, _size(src, (*ip, "size_mb"), m["size_mb"])))
        for i, layer in enumerate(layers):
            first = sizes.setdefault(layer.id, (layer.size_mb, (*ip, "layers", i)))
            if first[0] != layer.size_mb:
                where = (*ip, "layers", i, "size_mb") if "layers" in m else (*ip, "size_mb")
                src.fail(where, f"layer {layer.id!r} is {first[0]:g} MB where another image has it "
                                f"(line {src.line_of(first[1])}), {layer.size_mb:g} MB here: a shared layer "
                                "has one size")
        image = Image(name, tuple(layers))
        if "layers" in m and "size_mb" in m:
            total = _size(src, (*ip, "size_mb"), m["size_mb"])
            if not math.isclose(total, image.size_mb, rel_tol=1e-9, abs_tol=1e-9):
                src.fail((*ip, "size_mb"), f"{total:g} MB is not the sum of its layers ({image.size_mb:g} MB)")
        out[name] = image
    return out
