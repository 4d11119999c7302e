"""Several processes training one model (Lightning DDP, ``trainer=ddp``): which process owns
the run folder, and the plan the other processes follow.

Every process of a DDP run executes the whole run (``dbm-train`` again for Lightning's
subprocess launcher, the submitted job function for each SLURM task). Only the *main process*
(rank 0 on node 0) locks the folder, decides whether the run starts or resumes, and writes the
results. Before it fits, it writes that decision, the checkpoint to resume from, as
``RUN/.ddp_plan.json`` under a *launch token*, a value every process of one launch can work
out by itself: the variable :data:`LAUNCH_ENV` (set by the main process, inherited by the
processes Lightning starts), torchrun's run id, or the SLURM job, step and restart count. The
other processes wait for a plan with their token, so none resumes from a checkpoint the main
process has decided not to use.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbm_lightning.atomic import write_text_atomic
from dbm_lightning.errors import RunFolderError

if TYPE_CHECKING:
    import torch

__all__ = [
    "LAUNCH_ENV",
    "all_reduce",
    "clear_plan",
    "PLAN_FILE",
    "is_main_process",
    "launch_token",
    "wait_for_plan",
    "write_plan",
]

LAUNCH_ENV = "DBM_DDP_LAUNCH"
"""Launch token the main process sets for the processes it starts (Lightning's launcher)."""

PLAN_FILE = ".ddp_plan.json"
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID")
"""Environment variables that give a process a rank (Lightning, torchrun, SLURM); a process is
the main one when each of them is unset or 0."""

PLAN_TIMEOUT_S = 3600.0
"""How long a process of rank > 0 waits for the main process's plan (the main process loads
the data first)."""


def is_main_process() -> bool:
    """True in the process that owns the run folder: every rank variable unset or 0."""
    for name in RANK_VARIABLES:
        value = os.environ.get(name, "0").strip() or "0"
        if value.isdigit() and int(value) > 0:
            return False
    return True


def launch_token() -> str | None:
    """The token of this launch, the same in all its processes; ``None`` when nothing gives
    one (then :func:`write_plan` makes one and exports it to the processes started later)."""
    if os.environ.get(LAUNCH_ENV):
        return os.environ[LAUNCH_ENV]
    if os.environ.get("TORCHELASTIC_RUN_ID"):
        return f"torchrun:{os.environ['TORCHELASTIC_RUN_ID']}"
    if os.environ.get("SLURM_JOB_ID"):
        parts = ("SLURM_JOB_ID", "SLURM_STEP_ID", "SLURM_RESTART_COUNT")
        return "slurm:" + ":".join(os.environ.get(p, "0") for p in parts)
    return None


def write_plan(run_dir: str | Path, ckpt_path: str | None) -> Path:
    """The main process's plan for the other processes of this launch: ``ckpt_path`` (the
    checkpoint the fit resumes from, or ``None``)."""
    token = launch_token()
    if token is None:
        token = f"local:{uuid.uuid4().hex}"
        os.environ[LAUNCH_ENV] = token  # inherited by the processes Lightning starts
    path = Path(run_dir) / PLAN_FILE
    write_text_atomic(path, json.dumps({"launch": token, "ckpt_path": ckpt_path}) + "\n")
    return path


def clear_plan(run_dir: str | Path) -> None:
    """Remove the plan once every process has read it (they have when the fit ends)."""
    (Path(run_dir) / PLAN_FILE).unlink(missing_ok=True)


def wait_for_plan(run_dir: str | Path, timeout_s: float = PLAN_TIMEOUT_S) -> dict[str, Any]:
    """The plan of this launch, once the main process has written it (checked every 0.2 s).

    Raises
    ------
    RunFolderError
        When no plan of this launch appears within ``timeout_s`` (the main process failed
        before fitting, or the processes were started as separate runs).
    """
    path = Path(run_dir) / PLAN_FILE
    token = launch_token()
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            plan = json.loads(path.read_text())
        except (OSError, ValueError):
            plan = None
        if isinstance(plan, dict) and (token is None or plan.get("launch") == token):
            return plan
        if time.monotonic() > deadline:
            raise RunFolderError(
                Path(run_dir),
                f"this process has a rank above 0 but the main process wrote no plan for "
                f"launch {token} in {timeout_s:.0f} s (it failed before training, or the "
                "processes were not started as one DDP run)",
            )
        time.sleep(0.2)


def all_reduce(tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """``tensor`` reduced (``"sum"`` or ``"max"``) over the processes of the DDP group, a new
    tensor; ``tensor`` itself when no process group is running."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return tensor
    out = tensor.clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    return out
