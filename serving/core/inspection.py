"""What the app inspector says about a TARGET: one model for the child that imports the app
(`python -m serving.replica.app_target TARGET --json` writes it as one JSON line) and for both that
read it, the launcher (launcher/app_inspector.py) and the supervisor (serving/cluster/app_inspection.py).

Light: pydantic only. Unknown fields are kept, so a newer inspector does not break an older reader.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class Inspection(BaseModel):
    """One verdict on one target (and, on the launcher's side, when the file looked like what)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    ok: bool
    target: str = ""
    app_dir: str | None = Field(None, description="The folder asked for (None: the file's own).")
    folder: str | None = Field(None, description="Where the app runs and imports from.")
    file: str | None = None
    name: str | None = Field(None, description='How its Blocks was found: "demo", or "build_demo()".')
    kind: str | None = Field(None, description='"gr.Blocks", "gr.ChatInterface", ...')
    error: str | None = None
    hint: str | None = None
    warnings: list[str] = Field(default_factory=list, description="launch()/queue() settings that are not applied.")
    serve_app: bool = Field(False, description="A Serve application (`app = MyGradioServer.bind(...)`), deployed "
                            "as its file declares (serving/replica/serve_app.py).")
    stamp: tuple[int, int] | None = Field(None, description="The file's (mtime_ns, size) when it was checked.")
    unchecked: bool = Field(False, description="No verdict (too slow): Start is left to the supervisor's own check.")

    @property
    def refuses_start(self) -> bool:
        return not self.ok and not self.unchecked

    def summary(self) -> str:
        if self.ok:
            return f"{self.name} · {self.kind}"
        return self.error or "the app cannot be loaded"

    def to_line(self) -> str:
        return self.model_dump_json(exclude={"stamp", "unchecked"})

    @classmethod
    def from_line(cls, line: str | bytes) -> Inspection | None:
        """The verdict in one line of the inspector's stdout; None for any other line (the app's own output)."""
        line = line.strip()
        if not line.startswith(b"{" if isinstance(line, bytes) else "{"):
            return None
        try:
            data = json.loads(line)
            return cls.model_validate(data) if isinstance(data, dict) and "ok" in data else None
        except (ValueError, ValidationError):
            return None
