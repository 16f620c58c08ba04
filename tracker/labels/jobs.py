"""Label jobs that run beside a request and report progress; state lives in files so any worker can read it."""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable

MAX_AGE = 24 * 3600
log = logging.getLogger(__name__)


def _dir(root: str, job_id: str) -> str:
    if not job_id.replace("-", "").replace("_", "").isalnum():
        raise KeyError(job_id)
    return os.path.join(root, job_id)


def _write(path: str, state: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(state, fh)
    os.replace(tmp, path)


def start(root: str, owner: int, total: int, filename: str, mimetype: str,
          work: Callable[[str, Callable[[int], None]], None]) -> str:
    """Run `work(output_path, progress)` in a thread; return the job id to poll."""
    os.makedirs(root, exist_ok=True)
    _cleanup(root)
    job_id = secrets.token_urlsafe(16)
    folder = _dir(root, job_id)
    os.makedirs(folder)
    status = os.path.join(folder, "status.json")
    state = {"owner": owner, "total": total, "done": 0, "finished": False, "error": None,
             "filename": filename, "mimetype": mimetype, "started": time.time()}
    _write(status, state)

    def progress(n: int) -> None:
        state["done"] = n
        _write(status, state)

    def run() -> None:
        try:
            work(os.path.join(folder, "output"), progress)
            state["done"] = total
            state["finished"] = True
        except Exception as exc:  # reported to the page that polls, and logged in full
            log.exception("label job %s failed", job_id)
            state["error"] = str(exc)[:200]
        _write(status, state)

    threading.Thread(target=run, name=f"labels-{job_id}", daemon=True).start()
    return job_id


def status(root: str, job_id: str, owner: int) -> dict:
    """The job's state, for its owner only."""
    path = os.path.join(_dir(root, job_id), "status.json")
    with open(path) as fh:
        state = json.load(fh)
    if state["owner"] != owner:
        raise KeyError(job_id)
    return state


def output(root: str, job_id: str) -> str:
    return os.path.join(_dir(root, job_id), "output")


def _cleanup(root: str) -> None:
    now = time.time()
    for name in os.listdir(root):
        path = os.path.join(root, name)
        if os.path.isdir(path) and now - os.path.getmtime(path) > MAX_AGE:
            shutil.rmtree(path, ignore_errors=True)
