"""Launch forms generated from an AVI's parameter JSON schema, validated inline.

The schema (``GET /avis/{name}``) is the single description of the parameters:
it gives each widget its type, default, label, help text and allowed range.
Values are checked against the same schema (jsonschema) as they change and
before submitting; a form with an error shows it under the field and submits
nothing. Errors the server still finds (cross-field rules) are shown the same way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import panel as pn
import param
from jsonschema import Draft202012Validator

from api.client import ApiError, format_detail
from avi_plugins.params import allowed_values
from panel_apps.session import PlatformSession, SignedOut


@dataclass(frozen=True)
class FieldSpec:
    """How one schema property is edited: ``kind`` picks the widget."""

    name: str
    kind: str  # number | integer | enum | boolean | string | choices | list | json
    prop: Mapping[str, Any]
    optional: bool
    label: str
    help: str

    @property
    def simple(self) -> bool:
        """Shown on the simplified (outreach) form too."""
        return self.kind in ("number", "integer", "enum", "boolean")


def _resolve(schema: Mapping[str, Any], prop: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = prop.get("$ref", "")
    return schema.get("$defs", {}).get(ref.rsplit("/", 1)[-1], prop) if ref else prop


def field_specs(schema: Mapping[str, Any]) -> list[FieldSpec]:
    """One :class:`FieldSpec` per property, in declaration order."""
    specs = []
    for name, raw in schema.get("properties", {}).items():
        variants = [_resolve(schema, v) for v in raw.get("anyOf", [raw])]
        concrete = [v for v in variants if v.get("type") != "null"]
        prop = {**(concrete[0] if concrete else raw), **{k: v for k, v in raw.items()
                                                          if k in ("default", "description")}}
        kind = _kind(schema, prop)
        allowed = allowed_values(schema, name)
        label = raw.get("title", name.replace("_", " ").capitalize())
        help_text = " ".join(x for x in (raw.get("description", ""),
                                         f"Allowed: {allowed}." if allowed else "") if x)
        specs.append(FieldSpec(name=name, kind=kind, prop=prop,
                               optional=len(concrete) < len(variants), label=label,
                               help=help_text))
    return specs


def _kind(schema: Mapping[str, Any], prop: Mapping[str, Any]) -> str:
    if "enum" in prop:
        return "enum"
    kind = prop.get("type")
    if kind in ("number", "integer", "boolean", "string"):
        return str(kind)
    if kind == "array":
        items = _resolve(schema, prop.get("items", {}))
        if "enum" in items:
            return "choices"
        if items.get("type") in ("string", "number", "integer"):
            return "list"
    return "json"


def make_widget(spec: FieldSpec) -> pn.widgets.Widget:
    """The widget for one field. Bounds are *not* set on numeric inputs: the browser
    would clamp a bad value silently, and the user must see why it is wrong instead."""
    default = spec.prop.get("default")
    common = {"label": spec.label, "description": spec.help or None, "width": 320,
              "css_classes": [f"avip-field-{spec.name}"]}
    if spec.kind == "enum":
        return pn.widgets.Select(options=list(spec.prop["enum"]), value=default, **common)
    if spec.kind == "boolean":
        return pn.widgets.Checkbox(value=bool(default), **{**common, "description": None})
    if spec.kind == "number":
        return pn.widgets.FloatInput(value=default, **common)
    if spec.kind == "integer":
        return pn.widgets.IntInput(value=default, **common)
    if spec.kind == "choices":
        options = list(_items(spec).get("enum", []))
        return pn.widgets.MultiChoice(options=options, value=list(default or options), **common)
    if spec.kind == "list":
        text = ", ".join(str(v) for v in default) if default else ""
        return pn.widgets.TextInput(value=text, placeholder="comma-separated", **common)
    if spec.kind == "string":
        return pn.widgets.TextInput(value=default or "", **common)
    return pn.widgets.TextAreaInput(value=json.dumps(default if default is not None else []),
                                    placeholder="JSON", height=80, **common)


def _items(spec: FieldSpec) -> Mapping[str, Any]:
    return spec.prop.get("items", {})


def widget_value(spec: FieldSpec, raw: Any) -> Any:
    """The JSON value of a widget's content; raises ValueError for unparsable text."""
    if spec.kind == "list":
        parts = [p.strip() for p in str(raw or "").split(",") if p.strip()]
        if not parts:
            return None if spec.optional else []
        item_type = _items(spec).get("type")
        return [float(p) if item_type == "number" else int(p) if item_type == "integer" else p
                for p in parts]
    if spec.kind == "json":
        try:
            return json.loads(raw) if str(raw or "").strip() else None
        except json.JSONDecodeError as error:
            raise ValueError(f"not valid JSON: {error.msg}") from None
    if spec.kind == "string" and raw == "" and spec.optional:
        return None
    return raw


def validate(schema: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, str]:
    """Field name → first error message ('' key for errors not tied to one field)."""
    errors: dict[str, str] = {}
    for error in Draft202012Validator(schema).iter_errors(dict(values)):
        path = list(error.absolute_path)
        field = str(path[0]) if path else ""
        if error.validator == "required":
            field = error.message.split("'")[1] if "'" in error.message else ""
        message = error.message if error.validator != "required" else "a value is required"
        if field and field in schema.get("properties", {}):
            allowed = allowed_values(schema, field)
            if allowed and error.validator not in ("required",):
                message = f"{message} (allowed: {allowed})"
        errors.setdefault(field, message)
    return errors


class LaunchForm(pn.viewable.Viewer):
    """The generated form of one AVI; ``submitted_job`` is set when a job was queued."""

    avi = param.String(default="", doc="Name of the AVI this form launches.")
    schema = param.Dict(default={}, doc="JSON schema of the AVI's Params.")
    simplified = param.Boolean(default=False, doc="Only simple fields (outreach pages).")
    errors = param.Dict(default={}, doc="Current inline errors by field ('' = whole form).")
    submitted_job = param.Integer(default=None, allow_None=True, doc="Id of the queued job.")

    def __init__(self, session: PlatformSession, **params: Any) -> None:
        super().__init__(**params)
        self.session = session
        self.specs = [s for s in field_specs(self.schema) if s.simple or not self.simplified]
        self.widgets = {s.name: make_widget(s) for s in self.specs}
        self.error_panes = {s.name: pn.pane.Markdown("", visible=False, margin=(0, 10),
                                                      css_classes=["avip-field-error",
                                                                   f"avip-error-{s.name}"],
                                                      styles={"color": "#b00020"})
                            for s in self.specs}
        self.form_error = pn.pane.Alert("", alert_type="danger", visible=False,
                                        css_classes=["avip-form-error"])
        self.status = pn.pane.Markdown("", css_classes=["avip-form-status"])
        self.submit_button = pn.widgets.Button(label="Launch", button_type="primary",
                                               css_classes=["avip-launch"])
        self.submit_button.on_click(lambda _event: self.submit())
        for name, widget in self.widgets.items():
            widget.param.watch(lambda _e, n=name: self._check_field(n), "value")

    def values(self) -> tuple[dict[str, Any], dict[str, str]]:
        """(parameter values, parse errors) from the widgets."""
        values, errors = {}, {}
        for spec in self.specs:
            try:
                value = widget_value(spec, self.widgets[spec.name].value)
            except ValueError as error:
                errors[spec.name] = str(error)
                continue
            if value is None and not spec.optional and "default" not in spec.prop:
                continue  # 'required' will name it
            if value is not None or spec.optional:
                values[spec.name] = value
        return values, errors

    def check(self) -> dict[str, str]:
        values, errors = self.values()
        errors = {**validate(self.schema, values), **errors}
        self._show(errors)
        return errors

    def _check_field(self, name: str) -> None:
        errors = {k: v for k, v in self.check().items() if k == name}
        self._show({**{k: v for k, v in self.errors.items() if k != name}, **errors})

    def _show(self, errors: dict[str, str]) -> None:
        self.errors = errors
        for name, pane in self.error_panes.items():
            pane.object = f"⚠ {errors[name]}" if name in errors else ""
            pane.visible = name in errors
        general = errors.get("", "")
        self.form_error.object, self.form_error.visible = general, bool(general)

    def submit(self) -> int | None:
        """Validate; with no error queue the job through the API and return its id."""
        self.status.object = ""
        if self.check():
            self.status.object = "Fix the fields marked above; nothing was submitted."
            return None
        values, _ = self.values()
        try:
            job = self.session.call(lambda c: c.submit(self.avi, values))
        except SignedOut:
            return None
        except ApiError as error:
            self._show(self._server_errors(error))
            self.status.object = "The service refused the parameters; nothing was queued."
            return None
        self.submitted_job = job.id
        self.status.object = f"Job **{job.id}** queued ({job.cores} cores, {job.memory_mb} MB)."
        self.session.changed()
        return job.id

    def _server_errors(self, error: ApiError) -> dict[str, str]:
        errors: dict[str, str] = {}
        if isinstance(error.detail, list):
            for item in error.detail:
                loc = [str(p) for p in item.get("loc", [])]
                name = loc[2] if len(loc) > 2 and loc[1] == "params" else ""
                errors.setdefault(name if name in self.widgets else "", str(item.get("msg")))
        else:
            errors[""] = format_detail(error.detail)
        return errors

    def __panel__(self) -> pn.viewable.Viewable:
        rows: list[Any] = []
        for spec in self.specs:
            rows += [self.widgets[spec.name], self.error_panes[spec.name]]
        return pn.Column(*rows, self.form_error, self.submit_button, self.status,
                         css_classes=["avip-launch-form"])
