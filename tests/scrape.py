"""Reading a /metrics page as Prometheus does (prometheus-client's own parser)."""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Page:
    samples: tuple[tuple[str, dict[str, str], float], ...]
    types: dict[str, str]
    """Family name (without ``_total``) -> counter, gauge, histogram, ..."""

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples ``name`` whose labels include ``labels`` (0 if none)."""
        return sum(
            v
            for n, ls, v in self.samples
            if n == name and all(ls.get(k) == want for k, want in labels.items())
        )

    def has(self, name: str, **labels: str) -> bool:
        return any(
            n == name and all(ls.get(k) == want for k, want in labels.items())
            for n, ls, _ in self.samples
        )

    def labels(self, name: str, label: str) -> set[str]:
        """The values ``label`` takes among the samples ``name``."""
        return {ls[label] for n, ls, _ in self.samples if n == name and label in ls}


def parse(text: str) -> Page:
    samples, types = [], {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        samples.extend((s.name, dict(s.labels), s.value) for s in family.samples)
    return Page(tuple(samples), types)


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """GET ``url``: (status, body), whatever the status; (0, reason) when nothing answers."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except urllib.error.URLError as error:
        return 0, str(error.reason)


def scrape(url: str) -> Page:
    status, text = fetch(url)
    assert status == 200, text
    return parse(text)
