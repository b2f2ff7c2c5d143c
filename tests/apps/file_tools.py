"""Files in and out: rank a CSV of scores (a CSV to download), and colour swatches in a gr.Gallery."""

import csv
import tempfile
from pathlib import Path

import gradio as gr
from PIL import Image, ImageColor


def rank_scores(path: str | None) -> tuple[str, str]:
    if not path:
        raise gr.Error("Upload a CSV file first.")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or "name" not in rows[0] or "score" not in rows[0]:
        raise gr.Error("The CSV needs a 'name' and a 'score' column.")
    rows.sort(key=lambda r: float(r["score"]), reverse=True)
    out = Path(tempfile.mkdtemp()) / f"ranked-{Path(path).stem}.csv"
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["rank", "name", "score"])
        for rank, row in enumerate(rows, 1):
            writer.writerow([rank, row["name"], row["score"]])
    summary = f"{len(rows)} rows; top: {rows[0]['name']} ({rows[0]['score']})"
    return str(out), summary


def swatches(colors: str) -> list[tuple[Image.Image, str]]:
    items = []
    for name in [c.strip() for c in (colors or "").split(",") if c.strip()]:
        try:
            rgb = ImageColor.getrgb(name)
        except ValueError:
            raise gr.Error(f"Unknown colour: {name}") from None
        items.append((Image.new("RGB", (32, 32), rgb[:3]), name))
    return items


with gr.Blocks(title="File tools") as demo:
    with gr.Tab("Rank a CSV"):
        upload = gr.File(label="CSV with name,score", file_types=[".csv"])
        ranked = gr.File(label="Ranked CSV")
        summary = gr.Textbox(label="Summary")
        gr.Button("Rank").click(rank_scores, upload, [ranked, summary], api_name="rank_scores")
    with gr.Tab("Swatches"):
        colors = gr.Textbox(label="Colours", value="red, #00ff00, navy")
        gallery = gr.Gallery(label="Swatches", columns=4, format="png")
        gr.Button("Show").click(swatches, colors, gallery, api_name="swatches")

if __name__ == "__main__":
    demo.launch()
