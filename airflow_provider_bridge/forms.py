"""
The connection form for Airflow before 3.2, built from the one declaration of each vendor
(:mod:`airflow_provider_bridge.vendors`), as the provider info's form is.

Airflow 3.2 and later read the form from the provider info's ``conn-fields`` and
``ui-field-behaviour``. Airflow 3.1 reads it from two hook methods instead,
``get_connection_form_widgets`` (WTForms fields; its API server supplies stand-ins for WTForms and
Flask-AppBuilder, which need not be installed) and ``get_ui_field_behaviour``. Each vendor hook
exposes both through :func:`form_widgets` and :func:`field_behaviour`, so the form is declared once.
Airflow 3.2+ skips the two methods when the provider info declares the form, as it does here.

What the older form cannot show: it has text, integer, password and checkbox fields only, so a
number (``timeout``) and a JSON value (``rate_limits``) are text there; the hooks accept both the
value and its text.
"""

from __future__ import annotations

import json
from typing import Any

from airflow_provider_bridge.vendors import vendor


def _main_type(schema: dict[str, Any]) -> str:
    declared = schema.get("type", "string")
    types = [declared] if isinstance(declared, str) else list(declared)
    return next((t for t in types if t != "null"), "string")


def form_widgets(hook_class: type) -> dict[str, Any]:
    """``get_connection_form_widgets`` for Airflow < 3.2, from the hook's declared ``conn-fields``."""
    from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
    from flask_babel import lazy_gettext
    from wtforms import BooleanField, IntegerField, PasswordField, StringField
    from wtforms.validators import Optional, any_of

    widgets: dict[str, Any] = {}
    for name, field in vendor(hook_class.conn_type).conn_fields.items():  # type: ignore[attr-defined]
        schema = field.get("schema", {})
        kind = _main_type(schema)
        label = lazy_gettext(field.get("label", name))
        validators: list[Any] = [Optional()]
        allowed = [value for value in schema.get("enum", []) if value is not None]
        if allowed:
            validators.append(any_of(allowed))
        default = schema.get("default")
        common = {"validators": validators, "description": field.get("description", "")}
        if schema.get("format") == "password":
            widgets[name] = PasswordField(label, widget=BS3PasswordFieldWidget(), **common)
        elif kind == "integer":
            widgets[name] = IntegerField(label, widget=BS3TextFieldWidget(), default=default, **common)
        elif kind == "boolean":
            widgets[name] = BooleanField(label, default=default, **common)
        else:  # strings, numbers and JSON values: text
            text = default if default is None or isinstance(default, str) else json.dumps(default)
            widgets[name] = StringField(label, widget=BS3TextFieldWidget(), default=text, **common)
    return widgets


def field_behaviour(hook_class: type) -> dict[str, Any]:
    """``get_ui_field_behaviour`` for Airflow < 3.2, from the declared ``ui-field-behaviour``."""
    declared = vendor(hook_class.conn_type).ui  # type: ignore[attr-defined]
    return {
        "hidden_fields": list(declared.get("hidden-fields", [])),
        "relabeling": dict(declared.get("relabeling", {})),
        "placeholders": dict(declared.get("placeholders", {})),
    }
