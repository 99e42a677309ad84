"""Print what decides numerical results before the tests run (#16): the CPU model, the BLAS
and OpenMP kernels in use (threadpoolctl) and the library versions."""

from __future__ import annotations

import importlib
import importlib.metadata
import platform
from pathlib import Path


def cpu_model() -> str:
    """The first ``model name`` of /proc/cpuinfo (Linux), else what platform reports."""
    info = Path("/proc/cpuinfo")
    if info.is_file():
        for line in info.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def main() -> None:
    # Imported first: threadpoolctl lists only the libraries loaded in this process.
    for module in ("numpy", "torch", "faiss"):
        importlib.import_module(module)
    from threadpoolctl import threadpool_info

    print(f"cpu: {cpu_model()} ({platform.machine()}, python {platform.python_version()})")
    for pool in threadpool_info():
        keys = ("internal_api", "architecture", "version", "num_threads", "filepath")
        print("threadpool: " + ", ".join(f"{k}={pool.get(k)}" for k in keys if k in pool))
    import torch

    # torch links its BLAS statically (MKL on x86), which threadpoolctl does not list.
    print(
        f"torch cpu: capability={torch.backends.cpu.get_cpu_capability()}, "
        f"mkl={torch.backends.mkl.is_available()}, threads={torch.get_num_threads()}"
    )
    dists = ("torch", "faiss-cpu", "numpy", "lightning", "pytorch-metric-learning")
    for dist in dists:
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            version = "not installed"
        print(f"{dist}: {version}")


if __name__ == "__main__":
    main()
