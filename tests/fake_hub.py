"""A local stand-in for the Hugging Face Hub's file API, for tests without internet.

It speaks the part of the API that huggingface_hub's download code uses (point HF_ENDPOINT, or an
`endpoint=` argument, at `hub.url`):

    GET  /api/models/<repo>[/revision/<rev>][?blobs=true]   model info: sha, siblings (sizes, blob ids, LFS sha256)
    GET  /api/models/<repo>/tree/<rev>[?recursive=true]     the file tree with sizes
    HEAD /<repo>/resolve/<rev>/<file>                        ETag, X-Repo-Commit, Content-Length (as the Hub's)
    GET  /<repo>/resolve/<rev>/<file>                        the bytes; Range (206 + Content-Range) and If-Range

A repo is a list of commits; `<rev>` is "main" (the last commit) or a commit's sha. Weights
(*.safetensors, *.bin, *.onnx) are "LFS" files: their ETag is the content's sha256, as on the Hub;
other files get the git blob sha1. Real bytes, a real server (ThreadingHTTPServer on loopback).

What tests turn:
- `bytes_per_s`: the body is sent in small pieces at this rate, so progress, a stop and a resume show;
- `cut_after`: {file name: n}: the connection is dropped after n bytes of that file's body (once);
- `die()`: the whole server goes away, mid-file if a body is being sent, and refuses connections;
- `requests`: (method, path, Range header) of every request, to see what a client asked for.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".onnx", ".gguf", ".h5", ".msgpack")


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Commit:
    sha: str
    files: dict[str, bytes]

    def etag(self, name: str) -> str:
        data = self.files[name]
        return hashlib.sha256(data).hexdigest() if name.endswith(LFS_SUFFIXES) else git_blob_sha1(data)

    def sibling(self, name: str) -> dict:
        data = self.files[name]
        entry = {"rfilename": name, "size": len(data), "blobId": git_blob_sha1(data)}
        if name.endswith(LFS_SUFFIXES):
            entry["lfs"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
        return entry


@dataclass
class FakeHub:
    repos: dict[str, list[Commit]] = field(default_factory=dict)
    bytes_per_s: float | None = None
    cut_after: dict[str, int] = field(default_factory=dict)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _dead: threading.Event = field(default_factory=threading.Event)
    port: int = 0

    # -- content -------------------------------------------------------------------
    def add_repo(self, repo_id: str, files: dict[str, bytes]) -> Commit:
        """A repo with one commit, or a new commit on top (a file that changed on the server)."""
        commits = self.repos.setdefault(repo_id, [])
        sha = hashlib.sha1(f"{repo_id}:{len(commits)}".encode() + b"".join(files[n] for n in sorted(files))).hexdigest()
        commit = Commit(sha, dict(files))
        commits.append(commit)
        return commit

    def add_folder(self, repo_id: str, folder: Path, extra: dict[str, bytes] | None = None) -> Commit:
        files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        return self.add_repo(repo_id, {**files, **(extra or {})})

    def commit(self, repo_id: str, rev: str = "main") -> Commit | None:
        commits = self.repos.get(repo_id) or []
        if rev == "main":
            return commits[-1] if commits else None
        return next((c for c in commits if c.sha == rev), None)

    # -- life -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, port: int = 0) -> FakeHub:
        self._dead.clear()
        hub = self

        class Handler(_Handler):
            pass

        Handler.hub = hub
        self._server = ThreadingHTTPServer(("127.0.0.1", port or self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def die(self) -> None:
        """Gone at once: bodies being sent stop mid-file, new connections are refused."""
        self._dead.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    stop = die


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:  # http.server's naming
        self._route(body=False)

    def do_GET(self) -> None:
        self._route(body=True)

    def _route(self, body: bool) -> None:
        hub = self.hub
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = parse_qs(parts.query)
        hub.requests.append((self.command, path, self.headers.get("Range")))
        if hub._dead.is_set():
            self.connection.close()
            return
        if path.startswith("/api/models/"):
            return self._api(path.removeprefix("/api/models/"), query)
        if "/resolve/" in path:
            repo_id, _, rest = path.lstrip("/").partition("/resolve/")
            rev, _, name = rest.partition("/")
            return self._resolve(repo_id, rev, name, body)
        self._json({"error": "not found"}, 404)

    def _api(self, rest: str, query: dict) -> None:
        hub = self.hub
        for marker in ("/revision/", "/tree/"):
            if marker in rest:
                repo_id, _, rev = rest.partition(marker)
                break
        else:
            repo_id, marker, rev = rest, "", "main"
        rev = rev.split("/")[0] or "main"
        commit = hub.commit(repo_id, rev)
        if commit is None:
            self._json({"error": "Repository not found"}, 404, {"X-Error-Code": "RepoNotFound"})
            return
        if marker == "/tree/":
            self._json([{"type": "file", "path": n, "size": s["size"], "oid": s["blobId"],
                         **({"lfs": {"oid": s["lfs"]["sha256"], "size": s["size"], "pointerSize": 134}}
                            if "lfs" in s else {})}
                        for n in sorted(commit.files) for s in [commit.sibling(n)]])
            return
        blobs = query.get("blobs", ["false"])[0].lower() == "true"
        siblings = [commit.sibling(n) if blobs else {"rfilename": n} for n in sorted(commit.files)]
        self._json({"id": repo_id, "modelId": repo_id, "sha": commit.sha, "private": False, "siblings": siblings})

    def _resolve(self, repo_id: str, rev: str, name: str, body: bool) -> None:
        hub = self.hub
        commit = hub.commit(repo_id, rev)
        if commit is None:
            code = "RepoNotFound" if repo_id not in hub.repos else "RevisionNotFound"
            self._json({"error": code}, 404, {"X-Error-Code": code})
            return
        if name not in commit.files:
            self._json({"error": "Entry not found"}, 404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit.sha})
            return
        data, etag = commit.files[name], commit.etag(name)
        start, status = 0, 200
        wanted = self.headers.get("Range")
        if_range = (self.headers.get("If-Range") or "").strip('"')
        if wanted and wanted.startswith("bytes=") and (not if_range or if_range == etag):
            start = int(wanted.removeprefix("bytes=").split("-")[0] or 0)
            if start >= len(data):
                self._json({"error": "range not satisfiable"}, 416, {"Content-Range": f"bytes */{len(data)}"})
                return
            status = 206
        self.send_response(status)
        self.send_header("ETag", f'"{etag}"')
        self.send_header("X-Repo-Commit", commit.sha)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(data) - start))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if body:
            self._send_body(name, data, start)

    def _send_body(self, name: str, data: bytes, start: int) -> None:
        hub = self.hub
        piece = 16 * 1024
        cut = hub.cut_after.pop(name, None)
        sent, began = 0, time.monotonic()
        try:
            for offset in range(start, len(data), piece):
                if hub._dead.is_set() or (cut is not None and sent >= cut):
                    self.connection.shutdown(socket.SHUT_RDWR)  # mid-file, as a dying server
                    return
                chunk = data[offset:offset + piece]
                if cut is not None:
                    chunk = chunk[:max(0, cut - sent)] or chunk
                self.wfile.write(chunk)
                sent += len(chunk)
                if hub.bytes_per_s:
                    ahead = began + sent / hub.bytes_per_s - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)
        except OSError:
            pass  # the client went away (a stopped download)

    def _json(self, obj, status: int = 200, headers: dict | None = None) -> None:
        raw = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(raw)
