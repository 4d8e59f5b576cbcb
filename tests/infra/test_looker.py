"""The LookML project in ``dashboards/looker/`` against the BigQuery schemas and itself.

No Looker instance here, so the project is checked as files, the way the LookML validator
would reject it: every ``.lkml`` file parses (``lkml``); every view reads a table whose schema
is in ``src/fmnist/analytics/schemas/`` (or a derived table over them) and every
``${TABLE}.column`` names a column of it; every ``${field}`` / ``${view.field}`` reference,
measure filter, set member and ``{% parameter %}`` resolves; every field's SQL, with its
references expanded the way Looker substitutes them, parses as BigQuery SQL and names only
existing columns (sqlglot's qualifier); explores join existing views on fields of the views in
the explore; every field a dashboard element or filter uses exists in the element's explore;
the newspaper layout has no overlaps.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest
import sqlglot
import yaml
from sqlglot.optimizer.qualify import qualify

lkml = pytest.importorskip(
    "lkml",
    reason="lkml (the LookML parser) is not installed: add it to the dev extra and the lock",
)

REPO = Path(__file__).resolve().parents[2]
LOOKER = REPO / "dashboards" / "looker"
SCHEMAS = REPO / "src" / "fmnist" / "analytics" / "schemas"
CONNECTION = "fmnist_bigquery"

REFERENCE = re.compile(r"\$\{([^}]+)\}")
TABLE_COLUMN = re.compile(r"\$\{TABLE\}\.(\w+)")
CONSTANT = re.compile(r"@\{(\w+)\}")
LIQUID_PARAMETER = re.compile(r"\{%\s*parameter\s+(\w+)\s*%\}")
LIQUID = re.compile(r"\{%.*?%\}|\{\{.*?\}\}", flags=re.DOTALL)

# BigQuery column type -> the LookML dimension type a column of it gets.
LOOKML_TYPE = {
    "STRING": "string",
    "INTEGER": "number",
    "FLOAT": "number",
    "NUMERIC": "number",
    "BOOLEAN": "yesno",
    "TIMESTAMP": "time",
    "DATE": "time",
}
# BigQuery JSON schema type -> the type name sqlglot's BigQuery dialect knows.
SQL_TYPE = {
    "STRING": "STRING",
    "INTEGER": "INT64",
    "FLOAT": "FLOAT64",
    "NUMERIC": "NUMERIC",
    "BOOLEAN": "BOOL",
    "TIMESTAMP": "TIMESTAMP",
    "DATE": "DATE",
}
FIELD_KINDS = ("dimensions", "dimension_groups", "measures", "parameters", "filters")
ELEMENT_TYPES = {
    "single_value",
    "looker_line",
    "looker_area",
    "looker_column",
    "looker_bar",
    "looker_scatter",
    "looker_pie",
    "looker_donut_multiples",
    "looker_grid",
    "table",
    "looker_single_record",
    "looker_funnel",
    "looker_timeline",
    "looker_waterfall",
    "looker_boxplot",
    "text",
}
NEWSPAPER_COLUMNS = 24


# ---- loading --------------------------------------------------------------------------------


def lkml_files() -> list[Path]:
    """Every LookML file of the project."""
    return sorted(LOOKER.rglob("*.lkml"))


def dashboard_files() -> list[Path]:
    """Every LookML dashboard (YAML) of the project."""
    return sorted(LOOKER.rglob("*.dashboard.lookml"))


def parse(path: Path) -> dict[str, Any]:
    """One LookML file as lkml's dictionary."""
    parsed = lkml.load(path.read_text(encoding="utf-8"))
    assert isinstance(parsed, dict), path
    return parsed


def table_schema(table: str) -> dict[str, str]:
    """Column -> BigQuery type of one analytics table."""
    fields = json.loads((SCHEMAS / f"{table}.json").read_text(encoding="utf-8"))
    return {f["name"]: f["type"] for f in fields}


def schema_tables() -> list[str]:
    """The analytics tables that have a schema."""
    return sorted(p.stem for p in SCHEMAS.glob("*.json"))


@dataclass
class View:
    """A view with what the checks need: its fields and the relation it reads."""

    name: str
    raw: dict[str, Any]
    path: Path
    table: str | None = None  # a base table of the schemas
    derived_sql: str | None = None
    columns: dict[str, str] = field(default_factory=dict)

    def fields(self, kind: str) -> list[dict[str, Any]]:
        """The fields of one kind (dimensions, measures, ...)."""
        found: list[dict[str, Any]] = self.raw.get(kind, [])
        return found

    def all_fields(self) -> list[tuple[str, dict[str, Any]]]:
        """(kind, field) for every field that has SQL or can be referenced."""
        return [(kind, f) for kind in FIELD_KINDS for f in self.fields(kind)]

    def field_names(self) -> set[str]:
        """Every name a query or reference may use: dimension groups as ``group_timeframe``."""
        names = {f["name"] for kind, f in self.all_fields() if kind != "dimension_groups"}
        for group in self.fields("dimension_groups"):
            names |= {f"{group['name']}_{tf}" for tf in group.get("timeframes", [])}
        return names

    def lookup(self, name: str) -> tuple[str, dict[str, Any]] | None:
        """(kind, field) of a referable name; a dimension group's timeframe gives the group."""
        for kind, f in self.all_fields():
            if kind != "dimension_groups" and f["name"] == name:
                return kind, f
        for group in self.fields("dimension_groups"):
            if name in {f"{group['name']}_{tf}" for tf in group.get("timeframes", [])}:
                return "dimension_groups", group
        return None


@dataclass
class Project:
    """The parsed project: manifest constants, the model, its views and explores."""

    constants: dict[str, str]
    model_name: str
    model: dict[str, Any]
    views: dict[str, View]
    view_files: list[Path]

    def explores(self) -> dict[str, dict[str, Any]]:
        """Explores by name."""
        return {e["name"]: e for e in self.model.get("explores", [])}

    def aliases(self, explore: str) -> dict[str, str]:
        """Alias -> view of the base view and every join of ``explore``."""
        e = self.explores()[explore]
        found = {e["name"]: e.get("from") or e.get("view_name") or e["name"]}
        for join in e.get("joins", []):
            found[join["name"]] = join.get("from") or join["name"]
        return found

    def explore_fields(self, explore: str) -> set[str]:
        """Every ``alias.field`` a query of ``explore`` may use."""
        return {
            f"{alias}.{name}"
            for alias, view in self.aliases(explore).items()
            for name in self.views[view].field_names()
        }


def load_project() -> Project:
    """Parse every file of the project and attach each view's relation."""
    manifest = parse(LOOKER / "manifest.lkml")
    constants = {c["name"]: c["value"] for c in manifest.get("constants", [])}
    models = sorted(LOOKER.glob("*.model.lkml"))
    assert len(models) == 1, models
    views: dict[str, View] = {}
    view_files = sorted(LOOKER.rglob("*.view.lkml"))
    for path in view_files:
        for raw in parse(path).get("views", []):
            assert raw["name"] not in views, f"view {raw['name']} defined twice"
            views[raw["name"]] = View(raw["name"], raw, path)
    for view in views.values():
        if "sql_table_name" in view.raw:
            view.table = substitute_constants(view.raw["sql_table_name"], constants)
            view.table = view.table.strip().strip("`").split(".")[-1]
            assert view.table in schema_tables(), f"{view.name}: no schema for {view.table}"
            view.columns = {c: SQL_TYPE[t] for c, t in table_schema(view.table).items()}
    for view in views.values():
        if "derived_table" in view.raw:
            sql = expand_relation(view.raw["derived_table"]["sql"], views, constants)
            view.derived_sql = sql
            view.columns = derived_columns(sql, views)
    return Project(constants, models[0].name.split(".")[0], parse(models[0]), views, view_files)


def substitute_constants(text: str, constants: dict[str, str]) -> str:
    """Replace every ``@{constant}`` by its value (an unknown one fails)."""

    def value(match: re.Match[str]) -> str:
        assert match.group(1) in constants, f"@{{{match.group(1)}}} is not a manifest constant"
        return constants[match.group(1)]

    return CONSTANT.sub(value, text)


def expand_relation(sql: str, views: dict[str, View], constants: dict[str, str]) -> str:
    """A derived table's SQL with ``${view.SQL_TABLE_NAME}`` and constants substituted."""

    def table(match: re.Match[str]) -> str:
        ref = match.group(1)
        view, _, attribute = ref.partition(".")
        assert attribute == "SQL_TABLE_NAME", f"derived table references ${{{ref}}}"
        assert view in views and views[view].table, f"${{{ref}}}: no such base view"
        return str(views[view].table)

    return REFERENCE.sub(table, substitute_constants(sql, constants))


def sqlglot_schema(views: dict[str, View]) -> dict[str, dict[str, str]]:
    """Every base table with its columns, as sqlglot's qualifier takes it."""
    return {
        view.table: {c: SQL_TYPE[t] for c, t in table_schema(view.table).items()}
        for view in views.values()
        if view.table
    }


def derived_columns(sql: str, views: dict[str, View]) -> dict[str, str]:
    """The output columns of a derived table, after checking every column it reads exists."""
    tree = qualify(
        sqlglot.parse_one(sql, read="bigquery"),
        schema=sqlglot_schema(views),
        dialect="bigquery",
        validate_qualify_columns=True,
    )
    return {select.alias_or_name: "UNKNOWN" for select in tree.selects}


@pytest.fixture(scope="module")
def project() -> Project:
    """The parsed project."""
    return load_project()


# ---- expansion of field SQL ------------------------------------------------------------------


def expand(project: Project, view: View, sql: str, depth: int = 0) -> tuple[str, set[str]]:
    """``sql`` of a field of ``view`` as Looker would write it into a query: ``${TABLE}`` is the
    view's alias, a dimension reference its (expanded) SQL, a measure reference a constant
    (measures are checked one by one), ``{% parameter %}`` a number. Returns the SQL and the
    views it reads."""
    assert depth < 20, f"{view.name}: circular field references"
    used = {view.name}
    text = substitute_constants(sql, project.constants)
    for name in LIQUID_PARAMETER.findall(text):
        found = view.lookup(name)
        assert found and found[0] == "parameters", f"{view.name}: no parameter {name}"
    text = LIQUID.sub("0", text)

    def replace(match: re.Match[str]) -> str:
        ref = match.group(1)
        if ref == "TABLE":
            return view.name
        target_name, _, name = ref.rpartition(".")
        target = project.views.get(target_name) if target_name else view
        assert target is not None, f"{view.name}: ${{{ref}}} names no view"
        found = target.lookup(name)
        assert found is not None, f"{view.name}: ${{{ref}}} names no field of {target.name}"
        kind, referenced = found
        if kind in ("measures", "parameters", "filters"):
            return "(1)"
        inner, inner_used = expand(project, target, referenced["sql"], depth + 1)
        used.update(inner_used)
        return f"({inner})"

    return REFERENCE.sub(replace, text), used


def check_sql(project: Project, view: View, sql: str, where: str) -> None:
    """``sql`` (a field's expression) parses and names only existing columns."""
    expression, used = expand(project, view, sql)
    relations = []
    for name in sorted(used):
        other = project.views[name]
        source = other.table if other.table else f"({other.derived_sql})"
        relations.append(f"{source} AS {name}")
    query = f"SELECT {expression} AS value FROM " + " CROSS JOIN ".join(relations)
    try:
        qualify(
            sqlglot.parse_one(query, read="bigquery"),
            schema=sqlglot_schema(project.views),
            dialect="bigquery",
            validate_qualify_columns=True,
        )
    except (sqlglot.errors.ParseError, sqlglot.errors.OptimizeError) as error:
        pytest.fail(f"{where}: {error}\n{query}")


# ---- the files -------------------------------------------------------------------------------


def test_every_lookml_file_parses() -> None:
    files = lkml_files()
    names = {p.name for p in files}
    assert {"manifest.lkml", "fmnist.model.lkml"} <= names
    assert any(name.endswith(".view.lkml") for name in names)
    for path in files:
        assert parse(path), f"{path}: parsed to nothing"


def test_model_connection_and_includes(project: Project) -> None:
    assert project.model["connection"] == CONNECTION
    project_files = [p.relative_to(LOOKER).as_posix() for p in LOOKER.rglob("*") if p.is_file()]
    included: set[str] = set()
    for pattern in project.model["includes"]:
        assert pattern.startswith("/"), f"include {pattern!r}: use a path from the project root"
        # Looker lets an include leave out the .lkml / .lookml extension.
        candidates = [pattern[1:], pattern[1:] + ".lkml", pattern[1:] + ".lookml"]
        matched = {f for f in project_files for c in candidates if fnmatch(f, c)}
        assert matched, f"include {pattern!r} matches no file"
        included |= matched
    for path in [*project.view_files, *dashboard_files()]:
        assert path.relative_to(LOOKER).as_posix() in included, f"{path} is not included"


def test_every_constant_used_is_defined_and_every_defined_one_used(project: Project) -> None:
    used: set[str] = set()
    for path in [*lkml_files(), *dashboard_files()]:
        used |= set(CONSTANT.findall(path.read_text(encoding="utf-8")))
    assert used <= set(project.constants), used - set(project.constants)
    assert set(project.constants) <= used, set(project.constants) - used


def test_datagroups_used_are_defined(project: Project) -> None:
    defined = {d["name"] for d in project.model.get("datagroups", [])}
    used = {project.model["persist_with"]} if "persist_with" in project.model else set()
    used |= {e["persist_with"] for e in project.explores().values() if "persist_with" in e}
    used |= {
        v.raw["derived_table"]["datagroup_trigger"]
        for v in project.views.values()
        if "datagroup_trigger" in v.raw.get("derived_table", {})
    }
    assert used, "nothing is cached on a datagroup"
    assert used <= defined, used - defined


# ---- views against the BigQuery schemas ------------------------------------------------------


def test_one_view_per_table(project: Project) -> None:
    tables = [v.table for v in project.views.values() if v.table]
    assert sorted(tables) == schema_tables()


def test_every_view_reads_a_known_relation(project: Project) -> None:
    for view in project.views.values():
        assert view.table or view.derived_sql, f"{view.name}: no sql_table_name or derived_table"
        assert view.columns, f"{view.name}: no columns"


def test_table_columns_exist_in_the_schema(project: Project) -> None:
    checked = 0
    for view in project.views.values():
        for kind, f in view.all_fields():
            for column in TABLE_COLUMN.findall(f.get("sql", "")):
                assert column in view.columns, (
                    f"{view.name}.{f['name']} ({kind}): ${{TABLE}}.{column} is not a column of "
                    f"{view.table or 'its derived table'} ({sorted(view.columns)})"
                )
                checked += 1
    assert checked > 20, "suspiciously few ${TABLE} references"


def test_every_column_has_a_dimension_of_its_type(project: Project) -> None:
    for view in project.views.values():
        if not view.table:
            continue
        for column, bq_type in table_schema(view.table).items():
            plain = f"${{TABLE}}.{column}"
            matches = [
                (kind, f)
                for kind, f in view.all_fields()
                if kind in ("dimensions", "dimension_groups") and f.get("sql", "").strip() == plain
            ]
            assert matches, f"{view.name}: no dimension reads {plain}"
            for kind, f in matches:
                assert f.get("type") == LOOKML_TYPE[bq_type], (
                    f"{view.name}.{f['name']}: type {f.get('type')} for a {bq_type} column"
                )
                if kind == "dimension_groups":
                    assert f.get("datatype") == bq_type.lower(), f"{view.name}.{f['name']}"
                    assert f.get("timeframes"), f"{view.name}.{f['name']}: list the timeframes"


def test_every_view_has_one_primary_key(project: Project) -> None:
    for view in project.views.values():
        keys = [d["name"] for d in view.fields("dimensions") if d.get("primary_key") == "yes"]
        assert len(keys) == 1, f"{view.name}: primary keys {keys}"


def test_field_names_are_unique_per_view(project: Project) -> None:
    for view in project.views.values():
        names = [f["name"] for _, f in view.all_fields()]
        assert len(names) == len(set(names)), f"{view.name}: duplicate field names"


def test_every_field_sql_resolves_and_parses(project: Project) -> None:
    checked = 0
    for view in project.views.values():
        for kind, f in view.all_fields():
            if "sql" in f:
                check_sql(project, view, f["sql"], f"{view.name}.{f['name']} ({kind})")
                checked += 1
    assert checked > 30


def test_a_misspelt_column_is_caught(project: Project) -> None:
    """The checks themselves: a wrong column fails both the regex and the SQL check."""
    view = project.views["prediction_events"]
    assert "latency_msec" not in view.columns
    with pytest.raises(pytest.fail.Exception, match="latency_msec"):
        check_sql(project, view, "${TABLE}.latency_msec", "probe")
    with pytest.raises(AssertionError, match="no field"):
        expand(project, view, "${no_such_dimension}")


def test_measure_filters_and_sets_name_existing_fields(project: Project) -> None:
    for view in project.views.values():
        names = view.field_names()
        for measure in view.fields("measures"):
            for group in measure.get("filters__all", []):
                for condition in group:
                    for name in condition:
                        assert name in names, f"{view.name}.{measure['name']}: filter on {name}"
            for name in measure.get("drill_fields", []):
                assert name.rstrip("*") in names | {s["name"] for s in view.fields("sets")}
        for field_set in view.fields("sets"):
            for name in field_set["fields"]:
                assert name in names, f"{view.name} set {field_set['name']}: {name}"


def test_the_required_measures(project: Project) -> None:
    predictions = project.views["prediction_events"]
    feedback = project.views["feedback_events"]

    def measure(view: View, name: str) -> dict[str, Any]:
        found = view.lookup(name)
        assert found and found[0] == "measures", f"{view.name}.{name}"
        return found[1]

    assert measure(predictions, "count")["type"] == "count"
    p95 = measure(predictions, "latency_p95_ms")
    assert (p95["type"], p95["percentile"], p95["sql"]) == ("percentile", "95", "${latency_ms}")
    assert measure(predictions, "average_confidence")["type"] == "average"
    unknown = measure(predictions, "unknown_count")
    assert unknown["filters__all"] == [[{"is_unknown": "yes"}]]
    assert "${unknown_count}" in measure(predictions, "unknown_rate")["sql"]
    cost = measure(predictions, "cost_per_prediction")["sql"]
    assert "{% parameter cost_per_prediction_usd %}" in cost
    assert "@{cost_per_prediction_usd}" in cost
    accuracy = measure(feedback, "accuracy")["sql"]
    assert "${correct_count}" in accuracy and "${labelled_count}" in accuracy
    correct = feedback.lookup("is_correct")
    assert correct is not None
    assert "predicted_class = ${TABLE}.label_name" in correct[1]["sql"]
    drift = project.views["class_mix_drift"]
    assert {"total_variation_distance", "population_stability_index"} <= drift.field_names()


# ---- explores ---------------------------------------------------------------------------------


def test_explores_join_existing_views_on_fields_in_the_explore(project: Project) -> None:
    explores = project.explores()
    assert {"prediction_events", "feedback_events", "class_mix_drift"} <= set(explores)
    for name, explore in explores.items():
        aliases = project.aliases(name)
        for alias, view in aliases.items():
            assert view in project.views, f"explore {name}: {alias} -> no view {view}"
        for join in explore.get("joins", []):
            where = f"explore {name}, join {join['name']}"
            assert join.get("relationship") in {
                "one_to_one",
                "many_to_one",
                "one_to_many",
                "many_to_many",
            }, where
            assert join.get("type", "left_outer") in {"left_outer", "inner", "full_outer", "cross"}
            refs = REFERENCE.findall(join["sql_on"])
            assert refs, f"{where}: sql_on references no field"
            for ref in refs:
                alias, _, field_name = ref.partition(".")
                assert alias in aliases, f"{where}: ${{{ref}}} is not a view of the explore"
                assert field_name in project.views[aliases[alias]].field_names(), where
            assert {r.partition(".")[0] for r in refs} >= {join["name"]}, where
        for key in ("conditionally_filter", "always_filter"):
            spec = explore.get(key, {})
            names = [n for group in spec.get("filters__all", []) for c in group for n in c]
            names += spec.get("unless", [])
            for ref in names:
                assert ref in project.explore_fields(name), f"explore {name} {key}: {ref}"


def test_predictions_and_feedback_join_on_request_id(project: Project) -> None:
    join = next(
        j
        for j in project.explores()["prediction_events"]["joins"]
        if j["name"] == "feedback_events"
    )
    assert join["sql_on"].replace(" ", "") == (
        "${prediction_events.request_id}=${feedback_events.request_id}"
    )
    assert join["relationship"] == "one_to_one"  # one feedback per request (event_id)


# ---- dashboards -------------------------------------------------------------------------------


def load_dashboards() -> dict[str, dict[str, Any]]:
    """Dashboard id -> its definition, from every ``.dashboard.lookml`` file."""
    found: dict[str, dict[str, Any]] = {}
    for path in dashboard_files():
        documents = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert isinstance(documents, list), path
        for dashboard in documents:
            assert dashboard["dashboard"] not in found, f"dashboard {dashboard['dashboard']} twice"
            found[dashboard["dashboard"]] = dashboard | {"_file": path.name}
    return found


def element_fields(element: dict[str, Any]) -> list[str]:
    """Every field an element queries, sorts, pivots, fills, filters or listens on."""
    refs = list(element.get("fields", []))
    refs += element.get("pivots", []) + element.get("fill_fields", [])
    refs += [s.split()[0] for s in element.get("sorts", [])]
    refs += list(element.get("filters", {}) or {})
    refs += list((element.get("listen") or {}).values())
    return refs


def test_the_two_dashboards_exist() -> None:
    files = {d["_file"] for d in load_dashboards().values()}
    assert files == {"operations.dashboard.lookml", "business.dashboard.lookml"}


def test_dashboard_elements_use_fields_of_their_explore(project: Project) -> None:
    checked = 0
    for dashboard_id, dashboard in load_dashboards().items():
        filters = {f["name"]: f for f in dashboard.get("filters", [])}
        names = [e["name"] for e in dashboard["elements"]]
        assert len(names) == len(set(names)), f"{dashboard_id}: duplicate element names"
        for element in dashboard["elements"]:
            where = f"{dashboard_id}/{element['name']}"
            assert element["type"] in ELEMENT_TYPES, f"{where}: type {element['type']}"
            if element["type"] == "text":
                assert "model" not in element and (element.get("body_text") or "").strip()
                continue
            assert element["model"] == project.model_name, where
            assert element["explore"] in project.explores(), f"{where}: no explore"
            available = project.explore_fields(element["explore"])
            assert element["fields"], f"{where}: no fields"
            for ref in element_fields(element):
                assert ref in available, f"{where}: {ref} is not a field of {element['explore']}"
                checked += 1
            for ref in element.get("pivots", []) + element.get("fill_fields", []):
                assert ref in element["fields"], f"{where}: {ref} not among the fields"
            for sort in element.get("sorts", []):
                assert sort.split()[0] in element["fields"], f"{where}: sort {sort}"
            for name in element.get("listen") or {}:
                assert name in filters, f"{where}: listens to no filter {name}"
    assert checked > 50


def test_dashboard_filters_name_existing_fields(project: Project) -> None:
    for dashboard_id, dashboard in load_dashboards().items():
        listened = {name for e in dashboard["elements"] for name in e.get("listen") or {}}
        for spec in dashboard.get("filters", []):
            where = f"{dashboard_id} filter {spec['name']}"
            assert spec["name"] in listened, f"{where}: no element listens to it"
            if spec["type"] == "field_filter":
                assert spec["model"] == project.model_name, where
                assert spec["field"] in project.explore_fields(spec["explore"]), where
            else:
                assert spec["type"] in {"date_filter", "string_filter", "number_filter"}, where


def test_dashboard_layout_fits_and_does_not_overlap() -> None:
    for dashboard_id, dashboard in load_dashboards().items():
        assert dashboard["layout"] == "newspaper", dashboard_id
        taken: dict[tuple[int, int], str] = {}
        for element in dashboard["elements"]:
            row, col = element["row"], element["col"]
            width, height = element["width"], element["height"]
            assert width > 0 and height > 0 and col >= 0 and row >= 0, element["name"]
            assert col + width <= NEWSPAPER_COLUMNS, f"{dashboard_id}/{element['name']}"
            for r in range(row, row + height):
                for c in range(col, col + width):
                    other = taken.setdefault((r, c), element["name"])
                    assert other == element["name"], f"{dashboard_id}: {other} overlaps {element}"


def test_dashboards_show_what_they_are_for() -> None:
    dashboards = {d["_file"]: d for d in load_dashboards().values()}

    def fields(name: str) -> set[str]:
        return {f for e in dashboards[name]["elements"] for f in e.get("fields", [])}

    operations = fields("operations.dashboard.lookml")
    assert {
        "prediction_events.count",
        "prediction_events.latency_p95_ms",
        "prediction_events.unknown_rate",
        "class_mix_drift.total_variation_distance",
    } <= operations
    business = fields("business.dashboard.lookml")
    assert {
        "prediction_events.predicted_class",
        "feedback_events.accuracy",
        "class_mix_drift.population_stability_index",
        "prediction_events.cost_per_prediction",
    } <= business
    by_class = [
        e
        for e in dashboards["business.dashboard.lookml"]["elements"]
        if "prediction_events.predicted_class" in e.get("fields", [])
        and "prediction_events.count" in e.get("fields", [])
    ]
    assert by_class, "business: no volume by class"
