"""Building blocks of the generated Grafana dashboards: PromQL selectors checked against the metric contract,
panels, template variables and the grid layout, on top of grafana-foundation-sdk's builders.

Every panel reads the `datasource` template variable (a Prometheus datasource), so a dashboard works against
any Prometheus the user picks; the provisioned one has the fixed uid `PROMETHEUS_UID`.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from grafana_foundation_sdk.builders import bargauge, gauge, heatmap, prometheus, stat, table, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models import heatmap as heatmap_models
from grafana_foundation_sdk.models import prometheus as prom_models

from gamesre.core.contract import Contract
from gamesre.slo.selectors import escape

PROMETHEUS_UID = "prometheus"
ALERTMANAGER_UID = "alertmanager"
DATASOURCE_VAR = "datasource"
DS = models.DataSourceRef(type_val="prometheus", uid=f"${{{DATASOURCE_VAR}}}")
RATE = "$__rate_interval"  # Grafana's rate window: at least four scrape intervals, never shorter than a step
GRID_WIDTH = 24
ALL = models.VariableOption(selected=True, text="All", value="$__all")

GREEN, YELLOW, ORANGE, RED, BLUE = "green", "yellow", "orange", "red", "blue"


class DashboardError(ValueError):
    """The dashboards cannot be generated from the specs; the message names the dashboard and what is wrong."""


# --- PromQL -------------------------------------------------------------------------------------------------


class Series:
    """Selectors of series the metric contract (or the generated recording rules) defines, and nothing else."""

    def __init__(self, contract: Contract, recorded: Iterable[str] = ()) -> None:
        self.known = contract.all_series() | set(recorded)

    def __call__(self, name: str, matchers: Mapping[str, str] | None = None, regex: Mapping[str, str] | None = None,
                 exclude: Mapping[str, str] | None = None) -> str:
        """`name{k="v",k2=~"re",k3!~"re"}`: exact `matchers`, `regex` matchers (Grafana variables go there) and
        `exclude` regexes."""
        if name not in self.known:
            raise DashboardError(f"series {name!r} is neither in the metric contract nor a recording rule")
        return selector(name, matchers or {}, regex or {}, exclude or {})


def selector(name: str, exact: Mapping[str, str], regex: Mapping[str, str], exclude: Mapping[str, str]) -> str:
    parts = [f'{k}="{escape(v)}"' for k, v in exact.items()]
    parts += [f'{k}=~"{escape(v)}"' for k, v in regex.items()]
    parts += [f'{k}!~"{escape(v)}"' for k, v in exclude.items()]
    return f"{name}{{{','.join(parts)}}}" if parts else name


def number(value: float) -> str:
    """A PromQL/threshold literal without float noise (0.001, not 0.0010000000000000009)."""
    text = f"{float(value):.12g}"
    return text


# --- targets and panels -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """One panel target: PromQL, its legend, instant or range, and Grafana's result format."""

    expr: str
    legend: str = ""
    instant: bool = False
    format: str = "time_series"  # time_series | table | heatmap

    def build(self, ref_id: str) -> prometheus.Dataquery:
        q = prometheus.Dataquery().expr(self.expr).ref_id(ref_id).datasource(DS)
        q = q.instant() if self.instant else q.range()
        if self.legend:
            q = q.legend_format(self.legend)
        if self.format != "time_series":
            q = q.format(prom_models.PromQueryFormat(self.format))
        return q


def steps(*pairs: tuple[float | None, str]) -> builders.ThresholdsConfig:
    """Absolute thresholds: (None, base colour), then (value, colour) from which that colour applies."""
    return builders.ThresholdsConfig().mode(models.ThresholdsMode.ABSOLUTE).steps(
        [models.Threshold(value=v, color=c) for v, c in pairs])


Override = tuple[str, list[models.DynamicConfigValue]]


def threshold_override(name: str, pairs: Sequence[tuple[float | None, str]]) -> Override:
    """Per-series thresholds drawn as lines (one series per SLO, each with its own target)."""
    return name, [
        models.DynamicConfigValue(id_val="thresholds", value={
            "mode": "absolute", "steps": [{"color": c, "value": v} for v, c in pairs]}),
        models.DynamicConfigValue(id_val="custom.thresholdsStyle", value={"mode": "line"}),
    ]


@dataclass
class PanelSpec:
    """A panel before layout: what it shows, and its width and height on the 24-column grid."""

    builder: Any  # an SDK panel builder (timeseries.Panel, stat.Panel, ...)
    width: int
    height: int


def _common(panel: Any, title: str, description: str, queries: Sequence[Query], unit: str | None,
            thresholds: builders.ThresholdsConfig | None, min_value: float | None, max_value: float | None,
            time_from: str | None) -> Any:
    panel = panel.title(title).description(description).datasource(DS)
    for i, query in enumerate(queries):
        panel = panel.with_target(query.build(chr(ord("A") + i)))
    if unit:
        panel = panel.unit(unit)
    if thresholds is not None:
        panel = panel.thresholds(thresholds)
    if min_value is not None:
        panel = panel.min(min_value)
    if max_value is not None:
        panel = panel.max(max_value)
    if time_from:
        panel = panel.time_from(time_from)
    return panel


def timeseries_panel(title: str, description: str, queries: Sequence[Query], *, unit: str = "short",
                     thresholds: builders.ThresholdsConfig | None = None, min_value: float | None = None,
                     max_value: float | None = None, overrides: Sequence[Override] = (),
                     width: int = 12, height: int = 8, stack: bool = False, time_from: str | None = None) -> PanelSpec:
    panel = _common(timeseries.Panel(), title, description, queries, unit, thresholds, min_value, max_value,
                    time_from)
    panel = (panel.line_width(1).fill_opacity(10).span_nulls(False)
             .legend(common_builders.VizLegendOptions().display_mode(common.LegendDisplayMode.LIST)
                     .placement(common.LegendPlacement.BOTTOM).show_legend(True))
             .tooltip(common_builders.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI)
                      .sort(common.SortOrder.DESCENDING)))
    if thresholds is not None:
        panel = panel.thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(common.GraphTresholdsStyleMode.LINE))
    if stack:
        panel = panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    for name, properties in overrides:
        panel = panel.override_by_name(name, properties)
    return PanelSpec(panel, width, height)


def stat_panel(title: str, description: str, queries: Sequence[Query], *, unit: str = "short",
               thresholds: builders.ThresholdsConfig | None = None, decimals: int | None = None,
               time_from: str | None = None, graph: bool = False, width: int = 6, height: int = 4) -> PanelSpec:
    panel = _common(stat.Panel(), title, description, queries, unit, thresholds, None, None, time_from)
    panel = (panel.reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
             .color_mode(common.BigValueColorMode.VALUE)
             .graph_mode(common.BigValueGraphMode.AREA if graph else common.BigValueGraphMode.NONE)
             .text_mode(common.BigValueTextMode.AUTO))
    if decimals is not None:
        panel = panel.decimals(decimals)
    return PanelSpec(panel, width, height)


def gauge_panel(title: str, description: str, queries: Sequence[Query], *, unit: str, min_value: float,
                max_value: float, thresholds: builders.ThresholdsConfig, width: int = 6, height: int = 8) -> PanelSpec:
    panel = _common(gauge.Panel(), title, description, queries, unit, thresholds, min_value, max_value, None)
    panel = (panel.reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
             .show_threshold_markers(True).show_threshold_labels(False))
    return PanelSpec(panel, width, height)


def bargauge_panel(title: str, description: str, queries: Sequence[Query], *, unit: str = "short",
                   thresholds: builders.ThresholdsConfig | None = None, min_value: float | None = None,
                   max_value: float | None = None, width: int = 8, height: int = 8) -> PanelSpec:
    panel = _common(bargauge.Panel(), title, description, queries, unit, thresholds, min_value, max_value, None)
    panel = (panel.reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
             .display_mode(common.BarGaugeDisplayMode.GRADIENT).orientation(common.VizOrientation.HORIZONTAL)
             .show_unfilled(True))
    return PanelSpec(panel, width, height)


def table_panel(title: str, description: str, queries: Sequence[Query], *, width: int = 24,
                height: int = 8) -> PanelSpec:
    panel = _common(table.Panel(), title, description, queries, None, None, None, None, None)
    panel = panel.show_header(True).cell_height(common.TableCellHeight.SM).with_transformation(
        models.DataTransformerConfig(id_val="organize", options={
            "excludeByName": {"Time": True, "Value": True, "__name__": True}}))
    return PanelSpec(panel, width, height)


def heatmap_panel(title: str, description: str, query: Query, *, unit: str, width: int = 12,
                  height: int = 8) -> PanelSpec:
    """A heatmap of pre-bucketed histogram counts (query format heatmap: one series per `le`)."""
    panel = _common(heatmap.Panel(), title, description, [query], None, None, None, None, None)
    panel = (panel.calculate(False)
             .color(heatmap.HeatmapColorOptions().mode(heatmap_models.HeatmapColorMode.SCHEME).scheme("Oranges")
                    .scale(heatmap_models.HeatmapColorScale.EXPONENTIAL).exponent(0.5).steps(64).fill("dark-orange").reverse(False))
             .rows_frame(heatmap.RowsHeatmapOptions().layout(common.HeatmapCellLayout.LE))
             .y_axis(heatmap.YAxisConfig().unit(unit).axis_placement(common.AxisPlacement.LEFT))
             .cell_gap(1).show_legend().show_tooltip().show_y_histogram()
             .filter_values(heatmap.FilterValueRange().le(1e-9)))
    return PanelSpec(panel, width, height)


# --- variables ----------------------------------------------------------------------------------------------


def datasource_variable() -> builders.DatasourceVariable:
    return (builders.DatasourceVariable(DATASOURCE_VAR).label("Prometheus").type("prometheus")
            .current(models.VariableOption(selected=True, text="Prometheus", value=PROMETHEUS_UID)))


def query_variable(name: str, label: str, series: str, label_name: str) -> builders.QueryVariable:
    """A multi-value variable of one label's values in a series, defaulting to All (matched as `.*`)."""
    return (builders.QueryVariable(name).label(label).datasource(DS)
            .query({"query": f"label_values({series}, {label_name})", "refId": "PrometheusVariableQueryEditor"})
            .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(models.VariableSort.ALPHABETICAL_ASC)
            .multi(True).include_all(True).all_value(".*").current(ALL))


VARIABLE_QUERY = re.compile(r"^label_values\((?P<series>.+), (?P<label>[a-zA-Z_][a-zA-Z0-9_]*)\)$")


# --- layout and assembly ------------------------------------------------------------------------------------


@dataclass
class Section:
    """A row of the dashboard: a title and the panels under it, laid out left to right."""

    title: str
    panels: list[PanelSpec] = field(default_factory=list)


def layout(sections: Sequence[Section]) -> list[tuple[Any, models.GridPos]]:
    """Grid positions: each section starts with its row header, panels flow left to right and wrap at 24."""
    placed: list[tuple[Any, models.GridPos]] = []
    y = 0
    for section in sections:
        placed.append((builders.Row(section.title).collapsed(False), models.GridPos(h=1, w=GRID_WIDTH, x=0, y=y)))
        y += 1
        x, line_height = 0, 0
        for spec in section.panels:
            if not 0 < spec.width <= GRID_WIDTH:
                raise DashboardError(f"panel width {spec.width} is outside 1..{GRID_WIDTH}")
            if x + spec.width > GRID_WIDTH:
                x, y, line_height = 0, y + line_height, 0
            placed.append((spec.builder, models.GridPos(h=spec.height, w=spec.width, x=x, y=y)))
            x += spec.width
            line_height = max(line_height, spec.height)
        y += line_height
    return placed


@dataclass(frozen=True)
class DashboardMeta:
    uid: str
    title: str
    description: str
    tags: tuple[str, ...]
    time_from: str
    refresh: str = "30s"


def build_dashboard(meta: DashboardMeta, variables: Sequence[cogbuilder.Builder[models.VariableModel]],
                    links: Sequence[builders.DashboardLink], sections: Sequence[Section]) -> models.Dashboard:
    board = (builders.Dashboard(meta.title).uid(meta.uid).description(meta.description).tags(list(meta.tags))
             .style("dark").timezone("Asia/Seoul").refresh(meta.refresh).time(f"now-{meta.time_from}", "now")
             .tooltip(models.DashboardCursorSync.CROSSHAIR).editable()
             .timepicker(builders.TimePicker().refresh_intervals(["10s", "30s", "1m", "5m", "15m", "1h"]))
             .variables([datasource_variable(), *variables]).links(list(links)))
    next_id = 1
    for item, pos in layout(sections):
        item = item.id(next_id).grid_pos(pos)
        board = board.with_row(item) if isinstance(item, builders.Row) else board.with_panel(item)
        next_id += 1
    return board.build()


def link_to(title: str, uid: str, tooltip: str) -> builders.DashboardLink:
    """A header link to another generated dashboard, keeping the time range and the variables."""
    return (builders.DashboardLink(title).type(models.DashboardLinkType.LINK).url(f"/d/{uid}").tooltip(tooltip)
            .icon("dashboard").keep_time(True).include_vars(False).target_blank(False).as_dropdown(False))
