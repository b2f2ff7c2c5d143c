"""Hub models fetched by the supervisor before deploying: only what serving needs, checked against
the disk first, shown as it comes, stopped by Stop and continued by the next start.

What a model needs: its weights in safetensors where the repo has any (else pytorch_model*.bin),
with their index, and its config and tokenizer files (the top-level .json, .txt, .model, .jinja,
.tiktoken; the .py files too with trust_remote_code). Not the ONNX, TF, Flax or GGUF copies.

Why not `snapshot_download` as it is: huggingface_hub 2.4 writes each file to a process-unique
`<etag>.<random>.incomplete`, deletes it when the download fails, and starts from zero next time
(a SIGKILL leaves it behind, unused); and it reads 10 MB between progress updates. Measured on
tests/fake_hub.py: a 0.9 MB file killed after 2 s had left a 0-byte part, and the next run fetched
it whole without a Range. So the bytes are fetched here, into huggingface_hub's own cache: each
file into `blobs/<etag>.incomplete`, continued with `Range` (and `If-Range: <etag>`, so a file that
changed starts over), hashed against its etag (sha256 for LFS files, git's blob sha1 for the
others), then moved to `blobs/<etag>`; `hf_hub_download` then links it into the snapshot as it
does its own downloads, and `refs/main` names the commit. huggingface_hub's session, headers
(token, user agent, proxies) and lock files are used throughout.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

from filelock import FileLock

from serving.core.catalog import CatalogEntry, hub_refusal, offline
from serving.core.config import ConfigError
from serving.core.download_progress import human_bytes, percent
from serving.core.events import EventWriter, Phase
from serving.core.model_cache import hub_cache, repo_folder, snapshot_complete
from serving.core.preflight import StartError

TEXT_SUFFIXES = (".json", ".txt", ".model", ".jinja", ".tiktoken")
EMIT_EVERY_S = 0.5  # the launcher's bar and the terminal line move twice a second
SPEED_WINDOW_S = 5.0  # speed over the last seconds: steady, yet follows a change of pace
RETRIES = 5  # failures in a row without a byte before giving up (as huggingface_hub's http_get)
SPACE_HINT = ("free some space (`gradio-serve models` shows each cached model's size; "
              "`gradio-serve models --remove NAME` deletes one), or point HF_HUB_CACHE at a larger disk")


class DownloadStopped(Exception):
    """Stop was asked for: what came is kept for the next start."""


@dataclass
class HubFile:
    name: str
    size: int
    etag: str


@dataclass
class Plan:
    """One model's files at one commit, and where they go in the cache."""

    repo_id: str
    commit: str
    files: list[HubFile]
    folder: Path

    def blob(self, f: HubFile) -> Path:
        return self.folder / "blobs" / f.etag

    def partial(self, f: HubFile) -> Path:
        return self.folder / "blobs" / (f.etag + ".incomplete")

    def have(self, f: HubFile) -> int:
        if self.blob(f).is_file():
            return f.size
        part = self.partial(f)
        return min(part.stat().st_size, f.size) if part.is_file() else 0

    @property
    def total(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def have_bytes(self) -> int:
        return sum(self.have(f) for f in self.files)

    @property
    def snapshot(self) -> Path:
        return self.folder / "snapshots" / self.commit


def wanted_files(names: list[str], trust_remote_code: bool = False) -> list[str]:
    """The files serving loads, from a repo's file names (top level only)."""
    top = [n for n in names if "/" not in n]
    weights = [n for n in top if n.endswith(".safetensors") and not n.startswith("consolidated")]
    if weights:
        weights += [n for n in top if n.endswith(".safetensors.index.json")]
    else:
        weights = [n for n in top if fnmatch(n, "pytorch_model*.bin") or n == "pytorch_model.bin.index.json"]
    other = [n for n in top if n.endswith(TEXT_SUFFIXES) and not n.endswith(".index.json")]
    if trust_remote_code:
        other += [n for n in top if n.endswith(".py")]
    return sorted(set(weights + other))


def plan(repo_id: str, trust_remote_code: bool = False, endpoint: str | None = None,
         cache: Path | None = None) -> Plan:
    """What to fetch, with sizes and etags, from one model-info call."""
    from huggingface_hub import HfApi
    try:
        info = HfApi(endpoint=endpoint).model_info(repo_id, files_metadata=True)
    except Exception as exc:  # noqa: BLE001 - no network, the Hub down: said as such
        if refusal := hub_refusal(repo_id, exc):
            raise refusal from None
        raise StartError(f"cannot reach the Hugging Face hub to download {repo_id}: {type(exc).__name__}: {exc}",
                         "check the connection and start again; what was downloaded is kept") from None
    siblings = {s.rfilename: s for s in info.siblings or []}
    files = []
    for name in wanted_files(list(siblings), trust_remote_code):
        s = siblings[name]
        etag = s.lfs.sha256 if s.lfs is not None else s.blob_id
        if s.size is None or not etag:
            raise StartError(f"the Hub did not say the size of {repo_id}/{name}", "try again later")
        files.append(HubFile(name, s.size, etag))
    if not any(f.name.endswith((".safetensors", ".bin")) for f in files):
        raise ConfigError(f"{repo_id} has no weights serving can load (safetensors or pytorch_model.bin)")
    return Plan(repo_id, info.sha, files, repo_folder(repo_id, cache))


def free_space(folder: Path) -> int:
    """Free bytes on the disk that holds `folder` (or would, once made)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free


def check_space(plans: list[Plan], cache: Path, free: Callable[[Path], int] = free_space) -> None:
    """Before the first byte: refuse a download the disk cannot hold, with both figures."""
    need = sum(p.total - p.have_bytes for p in plans)
    have = free(cache)
    if need > have:
        names = ", ".join(p.repo_id for p in plans)
        raise StartError(f"downloading {names} needs {human_bytes(need)} in {cache}, which has only "
                         f"{human_bytes(have)} free", SPACE_HINT)


class Progress:
    """Bytes so far of one model, its speed and time left, said as `download` events."""

    def __init__(self, model: str, total: int, done: int, say: Callable[..., None]):
        self.model, self.total, self.done, self.say = model, total, done, say
        self._samples: deque[tuple[float, int]] = deque([(time.monotonic(), done)])
        self._said = 0.0

    def add(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        self._samples.append((now, self.done))
        while len(self._samples) > 2 and now - self._samples[0][0] > SPEED_WINDOW_S:
            self._samples.popleft()
        if now - self._said >= EMIT_EVERY_S:
            self.emit()

    def speed(self) -> float:
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0

    def emit(self, finished: bool = False) -> None:
        self._said = time.monotonic()
        speed = self.speed()
        eta = (self.total - self.done) / speed if speed > 0 and not finished else None
        self.say(model=self.model, done_bytes=self.done, total_bytes=self.total, bytes_per_s=round(speed, 1),
                 eta_s=None if eta is None else round(eta, 1), finished=finished)


def download(p: Plan, progress: Progress, stop: threading.Event, endpoint: str | None = None) -> Path:
    """Every file of the plan into the cache, linked into its snapshot; the snapshot folder."""
    from huggingface_hub import hf_hub_download

    (p.folder / "blobs").mkdir(parents=True, exist_ok=True)
    wanted = {p.partial(f).name for f in p.files}
    for stale in (p.folder / "blobs").glob("*.incomplete"):  # parts of files that changed since
        if stale.name not in wanted:
            stale.unlink(missing_ok=True)
    for f in p.files:
        lock = p.folder.parent / ".locks" / p.folder.name / f"{f.etag}.lock"  # huggingface_hub's own
        lock.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(lock):
            if not p.blob(f).is_file():
                _fetch(p, f, progress, stop, endpoint)
    for f in p.files:  # huggingface_hub links what it finds in blobs/ (one HEAD each, no bytes)
        hf_hub_download(p.repo_id, f.name, revision=p.commit, cache_dir=p.folder.parent, endpoint=endpoint)
    (p.folder / "refs").mkdir(exist_ok=True)
    (p.folder / "refs" / "main").write_text(p.commit)
    return p.snapshot


def _fetch(p: Plan, f: HubFile, progress: Progress, stop: threading.Event, endpoint: str | None) -> None:
    from huggingface_hub import get_session, hf_hub_url
    from huggingface_hub.errors import HfHubHTTPError
    from huggingface_hub.utils import build_hf_headers

    url = hf_hub_url(p.repo_id, f.name, revision=p.commit, endpoint=endpoint)
    headers = {**build_hf_headers(), "Accept-Encoding": "identity"}
    part = p.partial(f)
    failures = 0
    while True:
        have = part.stat().st_size if part.is_file() else 0
        if have > f.size:
            progress.add(-f.size)  # counted as f.size by Plan.have
            part.unlink()
            have = 0
        if have == f.size:
            break
        if stop.is_set():
            raise DownloadStopped
        try:
            _get(get_session(), url, headers, part, have, f, progress, stop)
        except DownloadStopped:
            raise
        except HfHubHTTPError as exc:  # the Hub said no: the commit is gone, the file moved, ...
            raise StartError(f"the Hub refused {p.repo_id}/{f.name}: {exc}".splitlines()[0],
                             "start again: the model's files are listed anew") from None
        except OSError as exc:  # writing: the disk filled up, or the folder went away
            raise StartError(f"cannot write {part}: {exc.strerror or exc}", SPACE_HINT) from None
        except Exception as exc:  # noqa: BLE001 - a dropped connection or a timeout: continue from where it stopped
            got = (part.stat().st_size if part.is_file() else 0) > have
            failures = 0 if got else failures + 1
            if failures >= RETRIES:
                done = part.stat().st_size if part.is_file() else 0
                raise StartError(f"the download of {p.repo_id}/{f.name} broke off at {human_bytes(done)} of "
                                 f"{human_bytes(f.size)}: {type(exc).__name__}: {exc}",
                                 "check the connection and start again: it continues from there") from None
            if stop.wait(min(2 ** failures, 10)):
                raise DownloadStopped from None
    _verify(part, f)
    part.replace(p.blob(f))


def _get(session, url: str, headers: dict, part: Path, have: int, f: HubFile, progress: Progress,
         stop: threading.Event) -> None:
    from huggingface_hub import constants
    from huggingface_hub.utils import hf_raise_for_status

    if have:
        headers = {**headers, "Range": f"bytes={have}-", "If-Range": f'"{f.etag}"'}
    with session.stream("GET", url, headers=headers, timeout=constants.HF_HUB_DOWNLOAD_TIMEOUT) as response:
        hf_raise_for_status(response)
        mode = "ab"
        if have and response.status_code != 206:  # the whole file came back: it changed, or no ranges here
            progress.add(-have)
            mode = "wb"
        with open(part, mode) as out:
            for chunk in response.iter_bytes():
                if stop.is_set():
                    raise DownloadStopped
                out.write(chunk)
                progress.add(len(chunk))


def _verify(part: Path, f: HubFile) -> None:
    """The bytes against the etag: a part continued across starts is whole and of one version."""
    digest = hashlib.sha256() if len(f.etag) == 64 else hashlib.sha1(b"blob %d\0" % part.stat().st_size)
    with open(part, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    if digest.hexdigest() != f.etag:
        part.unlink(missing_ok=True)
        raise StartError(f"{f.name} did not match its checksum once downloaded (it is removed)",
                         "start again to download it anew")


# -- the supervisor's step -------------------------------------------------------------------------


def fetch_missing(entries: list[CatalogEntry], slots: list, events: EventWriter, stop: threading.Event,
                  endpoint: str | None = None, free: Callable[[Path], int] = free_space,
                  told: Callable[[dict], None] | None = None) -> list[CatalogEntry]:
    """Each Hub model not whole in the cache, fetched; the entries, pointing at their snapshots.

    Local folders, the embedded model and models already whole need nothing (and no network).
    A stop keeps what came, says so as the `stopped` phase, and returns (the caller checks `stop`).
    `told` gets each `download` event's fields too (the supervisor's records: download_records.py)."""
    todo: dict[str, bool] = {}  # hub id -> trust_remote_code
    for entry, slot in zip(entries, slots, strict=True):
        if needs_download(entry):
            todo[entry.hub_id] = todo.get(entry.hub_id, False) or bool(getattr(slot, "trust_remote_code", False))
    if not todo:
        return entries
    if offline():
        raise ConfigError(f"{', '.join(todo)} is not (wholly) in the Hugging Face cache and downloads are off "
                          "(HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE): turn them on to download it")
    cache = hub_cache()
    plans = [plan(hub_id, trust, endpoint, cache) for hub_id, trust in todo.items()]
    check_space(plans, cache, free)
    where: dict[str, Path] = {}
    for p in plans:
        already = p.have_bytes
        events.emit("log", level="info", message=f"downloading {p.repo_id} from the Hub: {len(p.files)} files, "
                    f"{human_bytes(p.total)}" + (f" ({human_bytes(already)} already here)" if already else ""))
        progress = Progress(p.repo_id, p.total, already, lambda **fields: _say(events, told, fields))
        progress.emit()
        try:
            where[p.repo_id] = download(p, progress, stop, endpoint)
        except DownloadStopped:
            progress.emit()
            events.emit("phase", phase=Phase.stopped.value, message=f"stopped downloading {p.repo_id} at "
                        f"{percent(progress.done, p.total)}% ({human_bytes(progress.done)} of {human_bytes(p.total)}); "
                        "the next start continues from there")
            return entries
        progress.emit(finished=True)
    return [e.model_copy(update={"source": "cache", "available_offline": True, "path": str(where[e.hub_id])})
            if e.hub_id in where else e for e in entries]


def _say(events: EventWriter, told: Callable[[dict], None] | None, fields: dict) -> None:
    if told is not None:
        told(fields)  # first: the records name this supervisor before the event tells anyone to look
    events.emit("download", **fields)


def needs_download(entry: CatalogEntry) -> bool:
    """A Hub model not whole in the cache (local folders and the embedded model never do)."""
    return bool(entry.hub_id) and entry.source in ("hub", "cache") and not _whole(entry)


def _whole(entry: CatalogEntry) -> bool:
    from serving.core.catalog import cached_snapshot

    folder = Path(entry.path) if entry.path else cached_snapshot(entry.hub_id)
    return folder is not None and snapshot_complete(folder)
