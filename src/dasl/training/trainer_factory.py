"""Building the Lightning ``Trainer`` of a run: precision, checkpoints, loggers.

Shared by supervised metric learning (``run.py``) and self-supervised pretraining
(``ssl_run.py``): both write ``checkpoints/{best,last}.ckpt`` and ``logs/{csv,tensorboard}``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import torch
from lightning.fabric.utilities.warnings import PossibleUserWarning
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from dasl.config import ExperimentConfig
from dasl.data.loaders import epoch_seed
from dasl.training.checkpoint_io import AtomicCheckpointIO
from dasl.training.guards import NonFiniteGuard
from dasl.training.progress import ProgressLines, bar_wanted

# Two Lightning warnings that tell a user of dasl nothing they can act on (#16), each filtered
# by its own message, category and origin:
# - Lightning's own _pytree helper still builds torch's deprecated LeafSpec (once per fit);
# - "fewer training batches than log_every_n_steps": the per-epoch means are logged every
#   epoch whatever the interval (EpochLoggedModule), so no epoch goes unlogged.
warnings.filterwarnings(
    "ignore",
    message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    category=FutureWarning,
    module=r"lightning\.pytorch\.utilities\._pytree",
)
warnings.filterwarnings(
    "ignore",
    message=r"The number of training batches \(\d+\) is smaller than the logging interval",
    category=PossibleUserWarning,
    module=r"lightning\.pytorch\.loops\.fit_loop",
)


def resolve_precision(precision: str, accelerator: str) -> str:
    """``"auto"``: bf16 mixed precision on a GPU that supports it, full float32 elsewhere."""
    if precision != "auto":
        return precision
    on_gpu = accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    if on_gpu and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "16-mixed" if on_gpu else "32-true"


def seeded_epoch_position(trainer: L.Trainer | None, seed: int) -> tuple[int, int, int]:
    """``(rank, world, epoch)`` of the epoch about to be trained, with the global generator
    seeded from ``(seed, epoch, rank)``.

    For ``train_dataloader`` hooks: called at the start of every epoch
    (``reload_dataloaders_every_n_epochs=1``) after a checkpoint has been restored, so the
    epoch is the one about to be trained; Lightning may fetch a first batch before
    ``on_train_epoch_start``, hence the seeding here too (exact resume).
    """
    rank = trainer.global_rank if trainer is not None else 0
    world = trainer.world_size if trainer is not None else 1
    epoch = trainer.current_epoch if trainer is not None else 0
    torch.manual_seed(epoch_seed(seed, epoch, rank))
    return rank, world, epoch


def _log_version(kind: str, attempt: int) -> str:
    return kind if attempt == 1 else f"{kind}-resume{attempt - 1}"


def build_trainer(
    cfg: ExperimentConfig,
    run_dir: Path,
    callbacks: Sequence[Callback] = (),
    has_val: bool = True,
    monitor: str = "val/map@r",
    save_on_train_epoch_end: bool | None = None,
) -> tuple[L.Trainer, ModelCheckpoint]:
    """A Trainer for ``cfg.trainer`` writing into ``run_dir``.

    ``checkpoints/best.ckpt`` is the epoch with the highest ``monitor`` (when ``has_val``),
    ``checkpoints/last.ckpt`` the latest epoch (what ``--resume`` continues from). ``cfg``
    needs ``trainer`` and ``optim.grad_clip`` sections (supervised and SSL configs both do).
    ``save_on_train_epoch_end=True`` for runs without a validation loop whose monitor is
    logged at the end of the training epoch (pretraining's k-NN callback); ``None`` lets
    Lightning decide (after validation).
    """
    tcfg = cfg.trainer
    # last.ckpt after every epoch. Not save_last=True: since Lightning 2.2 that writes
    # last.ckpt only in epochs that also wrote best.ckpt, so a crash after an epoch without
    # improvement resumed from an older epoch.
    last = ModelCheckpoint(
        dirpath=run_dir / "checkpoints",
        filename="last",
        monitor=None,
        save_top_k=1,
        enable_version_counter=False,
        save_on_train_epoch_end=save_on_train_epoch_end,
    )
    best = ModelCheckpoint(
        dirpath=run_dir / "checkpoints",
        filename="best",
        monitor=monitor,
        mode="max",
        save_top_k=1,
        enable_version_counter=False,
        save_on_train_epoch_end=save_on_train_epoch_end,
    )
    checkpoint = best if has_val else last
    bar = bar_wanted(tcfg.progress_bar)
    progress = [c for c in callbacks if isinstance(c, ProgressLines)]
    if not progress:
        progress = [ProgressLines(getattr(cfg, "name", "run"))]
        callbacks = [*callbacks, *progress]
    for p in progress:
        p.lines = not bar  # interval lines where no bar is drawn
    # A resumed run logs into fresh version folders: Lightning would otherwise delete the
    # earlier attempt's CSV log. The full per-epoch history also lives in the checkpoint.
    attempt = 1
    while (run_dir / "logs" / _log_version("csv", attempt)).exists():
        attempt += 1
    loggers = [
        CSVLogger(run_dir, name="logs", version=_log_version("csv", attempt)),
        TensorBoardLogger(
            run_dir,
            name="logs",
            version=_log_version("tensorboard", attempt),
            default_hp_metric=False,
        ),
    ]
    trainer = L.Trainer(
        max_epochs=tcfg.epochs,
        accelerator=tcfg.accelerator,
        devices=tcfg.devices,
        num_nodes=tcfg.num_nodes,
        strategy=tcfg.strategy,
        # a user's string: Lightning checks it and names the valid ones
        precision=resolve_precision(tcfg.precision, tcfg.accelerator),  # type: ignore[arg-type]
        gradient_clip_val=cfg.optim.grad_clip,
        deterministic=tcfg.deterministic,
        log_every_n_steps=tcfg.log_every_n_steps,
        enable_progress_bar=bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        # Our batch sampler already shards by rank and is seeded per epoch.
        use_distributed_sampler=False,
        reload_dataloaders_every_n_epochs=1,
        limit_train_batches=tcfg.limit_train_batches,
        logger=loggers,
        callbacks=[
            *([best] if has_val else []),
            last,
            NonFiniteGuard(run_dir / "checkpoints"),
            *callbacks,
        ],
        # Checkpoints are complete or absent, whenever the process dies (kill -9, full disk).
        plugins=[AtomicCheckpointIO()],
        default_root_dir=run_dir,
    )
    return trainer, checkpoint
