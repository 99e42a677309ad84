"""``dasl search``: the nearest indexed images of query image files.

The query images are embedded with the index's own checkpoint (checked by SHA-256) and its
recorded preprocessing (:mod:`dasl.deploy.preprocessing`), so a query equal to an indexed
image finds it at distance 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from dasl.cli.errors import EXIT_OK, UserError


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _embed_queries(folder: Any, paths: list[str]) -> Any:  # -> (Q, d) float32 numpy array
    import torch

    from dasl.data.dataset import UnreadableImageError
    from dasl.training.checkpoint_io import CheckpointError, load_checked_module

    for path in paths:
        if Path(path).is_dir():
            raise UserError(f"query image {path}: a folder; pass image files")
        if not Path(path).is_file():
            raise UserError(f"query image: no such file: {path}")
    ckpt = folder.check_checkpoint()
    try:
        module = load_checked_module(ckpt)
    except CheckpointError as exc:
        raise UserError(f"{folder.path}: its checkpoint: {exc}") from None
    device = _device()
    module = module.to(device).eval()
    rows = []
    with torch.no_grad():
        for path in paths:
            try:
                x = folder.preprocessing.load(path, note=_note)
            except UnreadableImageError as exc:
                cause = exc.__cause__ or exc
                raise UserError(f"query image {path}: not an image file ({cause})") from None
            rows.append(module(x.unsqueeze(0).to(device)).float().cpu())
    return torch.cat(rows).numpy()


def _note(text: str) -> None:
    print(f"note: {text}", file=sys.stderr)


def cmd_search(args: argparse.Namespace) -> int:
    from dasl.deploy import read_index_folder
    from dasl.deploy.faiss_index import load_faiss_index, search_faiss_index

    if args.k < 1:
        raise UserError(f"-k must be >= 1, got {args.k}")
    folder = read_index_folder(args.index)
    index = load_faiss_index(folder.index_path)
    if index.ntotal != len(folder.items) or index.d != folder.dim:
        raise UserError(
            f"{folder.index_path}: {index.ntotal} vectors of dimension {index.d}, but the "
            f"manifest lists {len(folder.items)} of dimension {folder.dim}; rebuild the index"
        )
    queries = _embed_queries(folder, list(args.images))
    dist, idx = search_faiss_index(index, queries, args.k, folder.distance)
    results = []
    for q, path in enumerate(args.images):
        hits = []
        for rank, (d, i) in enumerate(zip(dist[q], idx[q], strict=True), start=1):
            label = int(folder.labels[i])
            hits.append(
                {
                    "rank": rank,
                    "item": int(i),
                    "path": folder.items[i],
                    "label": label,
                    "class": folder.class_name(label),
                    "distance": float(d),
                }
            )
        results.append({"query": path, "neighbors": hits})
    if args.json:
        doc = {
            "index": str(folder.path),
            "checkpoint": str(folder.checkpoint),
            "distance": folder.distance,
            "k": args.k,
            "queries": results,
        }
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    _print_table(results, folder.distance)
    return EXIT_OK


DISTANCE_NAMES = {"cosine": "1 - cos", "euclidean": "L2", "dot": "-q.x"}


def _print_table(results: list[dict[str, Any]], distance: str) -> None:
    for n, result in enumerate(results):
        if n:
            print()
        print(f"query: {result['query']}")
        hits = result["neighbors"]
        width = max([len("class"), *(len(h["class"]) for h in hits)])
        print(f"  rank  distance ({DISTANCE_NAMES[distance]})  {'class':<{width}}  path")
        dist_width = len(f"distance ({DISTANCE_NAMES[distance]})")
        for h in hits:
            print(
                f"  {h['rank']:>4}  {h['distance']:>{dist_width}.6f}  "
                f"{h['class']:<{width}}  {h['path']}"
            )


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``dasl search`` to the ``dasl`` parser."""
    p = sub.add_parser(
        "search",
        help="find the nearest indexed images of query images (an index of dasl embed --faiss)",
        description="Embed each query image with the index's checkpoint and preprocessing "
        "(as recorded by dasl embed --faiss) and print its k nearest indexed images: rank, "
        "distance (1 - cos for a cosine index, L2 for a euclidean one), class and path "
        "(in-memory datasets: DATASET:SPLIT[i]).",
    )
    p.add_argument("--index", required=True, help="a folder written by dasl embed --faiss")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="query image files")
    p.add_argument("-k", type=int, default=5, help="neighbours per query (default 5)")
    p.add_argument("--json", action="store_true", help="print one JSON document instead")
    p.set_defaults(func=cmd_search)
