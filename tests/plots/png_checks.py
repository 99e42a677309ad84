"""Checks that a written PNG is valid (signature, PIL opens it) and left no temporary file."""

from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_png(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
    with Image.open(path) as im:
        im.load()
        assert im.format == "PNG"
        size = im.size
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]  # no leftovers
    return size
