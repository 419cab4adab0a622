"""Reading a real scrape the way Prometheus does: prometheus_client's text parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape, keyed by name and labels."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    """One sample's value; 0 when the scrape does not have it (a counter never touched)."""
    return samples(text).get((name, frozenset(labels.items())), 0.0)


def families(text: str) -> dict[str, str]:
    """Family names and types."""
    return {family.name: family.type for family in text_string_to_metric_families(text)}
