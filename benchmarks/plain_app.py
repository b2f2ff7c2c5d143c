"""The baseline: the guide's original app, one plain Gradio process, `demo.launch()`.

Same Blocks (serving.replica.ui.build_blocks) and same models/settings as the Serve app, but the
models run in this process with serving.replica.models.Runner, one after the other. No Ray.

    python -m benchmarks.plain_app --mode fanout --port N          # both default fan-out slots
    python -m benchmarks.plain_app --mode fanout --port N --config FILE   # the slots of a launch config
    python -m benchmarks.plain_app --mode summarize --port N [--model REF]
    python -m benchmarks.plain_app --mode echo --port N            # a model that takes ~0 time
"""

from __future__ import annotations

import argparse
import asyncio
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def _once(ask):
    """The page's streaming handler: a plain app without streaming yields the whole answers once
    (the benchmarks call the whole-answer API endpoints, /summarize and /fanout)."""

    async def ask_stream(text: str):
        yield await ask(text)

    return ask_stream


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=["fanout", "summarize", "echo"], required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--config", help="a launch configuration (JSON): its mode and model slots")
    p.add_argument("--num-cpus", type=float, default=float(os.cpu_count() or 1),
                   help="torch threads (a plain app uses every core by default)")
    args = p.parse_args()

    from serving.core.config import Generation, LaunchConfig, Mode, ModelSlot, default_config
    from serving.replica.ui import build_blocks

    if args.mode == "echo":
        async def ask(text: str):
            return [{"text": text, "latency_s": 0.0, "truncated_to": None}]

        demo = build_blocks(Mode.summarize, ["echo"], ask, _once(ask))
    else:
        from serving.core.catalog import resolve
        from serving.replica.models import Runner

        if args.config:
            config = LaunchConfig.load(args.config)
        elif args.mode == "fanout":
            config = default_config("fanout")
        else:
            config = LaunchConfig(mode=Mode.summarize, models=[ModelSlot(model=args.model)])
        runners, labels = [], []
        for slot in config.models:
            entry = resolve(slot.model)
            runners.append(Runner(entry, config.mode, slot.generation or Generation(), num_cpus=args.num_cpus))
            labels.append(f"{slot.label} · {entry.name}" if slot.label else entry.name)

        def sequential(text: str) -> list[dict]:
            return [r.generate([text])[0].as_dict() for r in runners]  # one after the other

        async def ask(text: str):
            return await asyncio.to_thread(sequential, text)

        demo = build_blocks(config.mode, labels, ask, _once(ask))
    # Gradio's defaults: the queue runs one event at a time per endpoint.
    demo.launch(server_name="127.0.0.1", server_port=args.port, show_error=True, quiet=True)


if __name__ == "__main__":
    main()
