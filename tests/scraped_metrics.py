"""A Prometheus endpoint as a test reads it: every sample by name and labels."""

from __future__ import annotations

import requests
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    response = requests.get(url, timeout=10)
    response.raise_for_status()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float:
    """The sample's value; 0 when there is none (a counter not yet counted)."""
    return samples.get((name, frozenset(labels.items())), 0.0)
