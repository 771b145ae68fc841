"""The metric state of one fleet process, shaped by the metric contract and exposed by a prometheus_client collector.

Every contract metric of the process's service exists from the start with every label combination (counters
at 0), so rates and ratios are defined before the first failure. Every series carries the contract's target
labels (service, version, track). Changing the build starts new series, as a restarted process would:
counters and histograms begin again at zero under the new labels, gauges keep their values.
"""
from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from demo.admin import Build

if TYPE_CHECKING:
    from gamesre.core.contract import Contract, MetricDef

Labels = tuple[str, ...]


class FleetMetrics(Collector):
    """Thread-safe counters, gauges and histograms for exactly the contract's metrics of one service."""

    def __init__(self, contract: Contract, service: str, build: Build) -> None:
        self._contract = contract
        self._service = service
        self._build = build
        self._defs: dict[str, MetricDef] = {m.name: m for m in contract.metrics_for(service)}
        self._lock = threading.Lock()
        self._scalars: dict[str, dict[Labels, float]] = {}
        self._buckets: dict[str, dict[Labels, list[int]]] = {}  # per bucket (not cumulative), +Inf last
        self._sums: dict[str, dict[Labels, float]] = {}
        self._start_series(keep_gauges=False)

    # --- recording -----------------------------------------------------------------------------------------
    def inc(self, name: str, labels: Labels = (), amount: float = 1.0) -> None:
        with self._lock:
            self._scalars[name][labels] += amount

    def set(self, name: str, labels: Labels = (), value: float = 0.0) -> None:
        with self._lock:
            self._scalars[name][labels] = value

    def observe(self, name: str, labels: Labels, seconds: float) -> None:
        bounds = self._defs[name].buckets
        index = next((i for i, b in enumerate(bounds) if seconds <= b), len(bounds))
        with self._lock:
            self._buckets[name][labels][index] += 1
            self._sums[name][labels] += seconds

    def value(self, name: str, labels: Labels = ()) -> float:
        """Current value of a counter or gauge (for the process's own logic and tests)."""
        with self._lock:
            return self._scalars[name][labels]

    # --- build labels --------------------------------------------------------------------------------------
    @property
    def build(self) -> Build:
        return self._build

    def set_build(self, build: Build) -> None:
        with self._lock:
            self._build = build
            self._start_series(keep_gauges=True)

    def _start_series(self, keep_gauges: bool) -> None:
        old = self._scalars
        values = self._contract.label_values
        self._scalars, self._buckets, self._sums = {}, {}, {}
        for m in self._defs.values():
            combos: list[Labels] = list(itertools.product(*(values[label] for label in m.labels)))
            if m.type == "histogram":
                self._buckets[m.name] = {c: [0] * (len(m.buckets) + 1) for c in combos}
                self._sums[m.name] = dict.fromkeys(combos, 0.0)
            elif m.type == "gauge" and keep_gauges:
                self._scalars[m.name] = dict(old[m.name])
            else:
                self._scalars[m.name] = dict.fromkeys(combos, 0.0)

    # --- exposition ----------------------------------------------------------------------------------------
    def _target_values(self) -> list[str]:
        known = {"service": self._service, "version": self._build.version, "track": self._build.track}
        return [known[label] for label in self._contract.target_labels]

    def collect(self) -> Iterator[Metric]:
        with self._lock:  # snapshot under the lock, format outside it
            families = list(self._families())
        return iter(families)

    def _families(self) -> Iterator[Metric]:
        target = self._target_values()
        label_names = list(self._contract.target_labels)
        for m in self._defs.values():
            names = label_names + list(m.labels)
            if m.type == "histogram":
                hist = HistogramMetricFamily(m.name, m.help, labels=names)
                les = [floatToGoString(b) for b in m.buckets] + ["+Inf"]
                for combo, counts in self._buckets[m.name].items():
                    cumulative = list(itertools.accumulate(counts))
                    hist.add_metric(target + list(combo), list(zip(les, cumulative, strict=True)),
                                    self._sums[m.name][combo])
                yield hist
            else:
                family_type = CounterMetricFamily if m.type == "counter" else GaugeMetricFamily
                family = family_type(m.name, m.help, labels=names)
                for combo, value in self._scalars[m.name].items():
                    family.add_metric(target + list(combo), value)
                yield family
