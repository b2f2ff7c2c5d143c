"""Helpers of the glossary app (imported as a sibling module)."""

import csv


def load_terms(path: str) -> dict[str, str]:
    with open(path, newline="", encoding="utf-8") as f:
        return {row["term"].lower(): row["definition"] for row in csv.DictReader(f)}


def define(terms: dict[str, str], term: str) -> str:
    return f"{term.strip().lower()}: {terms[term.strip().lower()]}"
