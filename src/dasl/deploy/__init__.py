"""What comes after training: searchable index folders (``dasl embed --faiss`` / ``dasl search``)
and exported embedding models (``dasl export``), each with the preprocessing it needs recorded.

Framework-free: nothing here parses command lines; :mod:`dasl.cli.search` and
:mod:`dasl.cli.export` turn arguments into calls of these modules.
"""

from dasl.deploy.faiss_index import build_faiss_index, save_faiss_index
from dasl.deploy.index_folder import IndexFolder, IndexFolderError, read_index_folder
from dasl.deploy.preprocessing import Preprocessing

__all__ = [
    "IndexFolder",
    "IndexFolderError",
    "Preprocessing",
    "build_faiss_index",
    "read_index_folder",
    "save_faiss_index",
]
