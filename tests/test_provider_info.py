"""The provider registers with Airflow and its metadata validates against Airflow's schema."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import jsonschema

from airflow_provider_bridge.get_provider_info import get_provider_info
from airflow_provider_bridge.vendors import vendors


def test_provider_info_validates_against_the_installed_schema():
    import airflow

    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    info = get_provider_info()
    jsonschema.validate(info, schema)
    assert info["package-name"] == "airflow-provider-bridge"


def test_entry_point_is_registered():
    eps = [
        ep
        for ep in entry_points(group="apache_airflow_provider")
        if ep.value.startswith("airflow_provider_bridge")
    ]
    assert len(eps) == 1 and eps[0].load()() == get_provider_info()


def test_declared_hooks_exist_with_the_connection_attributes():
    for conn in get_provider_info()["connection-types"]:
        module, _, name = conn["hook-class-name"].rpartition(".")
        hook = getattr(importlib.import_module(module), name)
        assert hook.conn_type == conn["connection-type"]
        assert hook.conn_name_attr == "conn_id"
        assert hook.default_conn_name == f"{conn['connection-type']}_default"
        assert hook.hook_name == conn["hook-name"]
        assert all(f.get("label") for f in conn["conn-fields"].values())


def test_airflow_lists_the_provider_and_its_connection_type():
    providers = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "airflow-provider-bridge" in {p["package_name"] for p in json.loads(providers.stdout)}
    hooks = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "hooks", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "bridgit_bench" in hooks.stdout


def test_airflow_config_shows_the_bridge_options_with_their_defaults(monkeypatch):
    monkeypatch.delenv("AIRFLOW__BRIDGE__STATE_BACKEND", raising=False)
    command = [
        sys.executable,
        "-m",
        "airflow",
        "config",
        "list",
        "--section",
        "bridge",
        "--include-descriptions",
    ]
    usage = subprocess.run([*command[:5], "--help"], capture_output=True, text=True, check=True).stdout
    if "--show-values" in usage:  # newer Airflow hides values unless asked; 3.1 always shows them
        command.append("--show-values")
    listed = subprocess.run(command, capture_output=True, text=True, check=True)
    assert "state_backend = sqlite" in listed.stdout
    assert "state_namespace = airflow_bridge" in listed.stdout
    assert "lock_lease = 15" in listed.stdout
    assert "postgres://<airflow conn id>" in listed.stdout  # the description


def test_every_vendor_lists_its_operators_sensor_and_triggers():
    from airflow_provider_bridge.get_provider_info import get_provider_info

    VENDOR_NAMES = ("Third-Party Manager", "ServiceBridge", "Bridgit Bench")
    info = get_provider_info()
    for section in ("hooks", "operators", "sensors", "triggers"):
        named = {entry["integration-name"] for entry in info[section]}
        assert named == set(VENDOR_NAMES), section
    integrations = {i["integration-name"] for i in info["integrations"]}
    assert integrations == set(VENDOR_NAMES)


def test_packaging_declares_the_license_and_the_provider_classifier():
    import tomllib

    from tests.conftest import REPO

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    assert "Apache License" in (REPO / "LICENSE").read_text()[:200]
    assert "Framework :: Apache Airflow :: Provider" in project["classifiers"]
    assert (REPO / "CHANGELOG.md").read_text().startswith("# Changelog")


def test_every_extra_a_hook_reads_is_a_field_of_its_connection_form():
    """Found by reading the hooks' source: every extra read by name is declared in conn-fields."""
    import re

    from airflow_provider_bridge.get_provider_info import get_provider_info
    from tests.conftest import REPO

    hooks = REPO / "airflow_provider_bridge" / "hooks"
    read = re.compile(r'extras\.(?:raw|number|choice|mapping|boolean|hosts)\(\s*"([a-z_]+)"')
    base = (hooks / "adapter.py").read_text() + (hooks / "client.py").read_text()
    connection = (hooks / "connection.py").read_text()
    common = set(read.findall(base)) | set(
        re.findall(r'(?:number|extra_value\(extras, ctype,)\(?\s*"([a-z_]+)"', connection)
    )
    assert {"timeout", "rate_limits", "natural_keys", "write_settle"} <= common  # the pattern works
    for conn in get_provider_info()["connection-types"]:
        vendor = conn["connection-type"]
        used = common | set(read.findall((hooks / f"{vendor}.py").read_text()))
        assert used - set(vendors()[vendor].all_fields) == set(), vendor


def test_json_valued_fields_are_declared_as_json_and_accepted_as_the_form_stores_them(tpm, monkeypatch):
    """The form edits them as JSON and stores the value itself in the extra, not its text."""
    import json

    from airflow_provider_bridge.get_provider_info import get_provider_info
    from airflow_provider_bridge.hooks.third_party_manager import ThirdPartyManagerHook

    declared = {
        c["connection-type"]: vendors()[c["connection-type"]].all_fields
        for c in get_provider_info()["connection-types"]
    }
    for vendor, fields in declared.items():
        for name in ("rate_limits", "allowed_hosts"):
            assert fields[name]["schema"]["type"] == ["array", "null"], (vendor, name)
        assert fields["natural_keys"]["schema"]["type"] == ["object", "null"], vendor
    for name in ("resource_types", "extra_headers"):
        assert declared["third_party_manager"][name]["schema"]["type"] == ["object", "null"]
    conn = tpm.connection()
    conn["extra"].update(
        rate_limits=[[100, 1]],
        allowed_hosts=["cdn.example.com"],
        extra_headers={"X-Team": "data"},
        resource_types={"engagements": "engagement"},
        natural_keys={"engagement": "name"},
    )
    monkeypatch.setenv("AIRFLOW_CONN_THIRD_PARTY_MANAGER_DEFAULT", json.dumps(conn))
    hook = ThirdPartyManagerHook()
    assert list(hook.list_entities("engagements")) == []
    assert hook.client.allowed_hosts == frozenset({"cdn.example.com"})
    assert hook.adapter.default_headers()["X-Team"] == "data"
    assert hook.adapter.write_body("engagements", {"a": 1})["data"]["type"] == "engagement"


def _pins(lock_name: str) -> dict[str, str]:
    import re

    from tests.conftest import REPO

    lock = (REPO / "requirements" / lock_name).read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", lock.split("\n", 3)[3])
    assert all("--hash=sha256:" in entry for entry in entries if "==" in entry), lock_name
    return {
        re.sub(r"[-_.]+", "-", name).lower(): version
        for name, version in re.findall(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)==([^\s;\\]+)", lock, re.MULTILINE)
    }


def _project() -> dict:
    import tomllib

    from tests.conftest import REPO

    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _group(groups: dict, name: str) -> list[str]:
    out: list[str] = []
    for item in groups[name]:
        out += _group(groups, item["include-group"]) if isinstance(item, dict) else [item]
    return out


def test_the_lock_pins_every_dependency_within_its_range_with_hashes():
    """requirements/dev.lock (what bootstrap installs) satisfies pyproject.toml's ranges: the
    provider's dependencies, every user extra and the dev dependency group."""
    import re

    from packaging.requirements import Requirement

    data = _project()
    project = data["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        wanted += [Requirement(r) for r in extra]
    wanted += [Requirement(r) for r in _group(data["dependency-groups"], "dev")]
    assert "dev" not in project["optional-dependencies"], "development tools are a group, not an extra"
    pinned = _pins("dev.lock")
    assert len(pinned) > 100
    for req in wanted:
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        assert name in pinned, f"{req.name} is not in requirements/dev.lock: run scripts/lock.sh"
        assert req.specifier.contains(pinned[name], prereleases=True), (req, pinned[name])


def test_the_lowest_lane_tests_every_floor():
    """requirements/airflow-lowest.lock (scripts/test-matrix.sh) pins each direct dependency of the
    provider and of its user extras at the floor pyproject.toml declares: the floors were tested."""
    import re

    from packaging.requirements import Requirement

    project = _project()["project"]
    texts = list(project["dependencies"])
    for extra, reqs in project["optional-dependencies"].items():
        if extra != "celery":  # the cluster demo's extra: tested on the latest Airflow only
            texts += reqs
    pinned = _pins("airflow-lowest.lock")
    for req in map(Requirement, texts):
        floors = [spec.version for spec in req.specifier if spec.operator == ">="]
        assert len(floors) == 1, f"{req}: one >= floor expected"
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        assert pinned.get(name) == floors[0], f"{req}: the lowest lane has {pinned.get(name)}"


def test_the_pre_3_2_form_is_built_from_the_same_declaration(monkeypatch):
    """What Airflow 3.1's API server does with get_connection_form_widgets, with its own stand-ins."""
    import sys
    from unittest import mock

    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService as Meta

    from airflow_provider_bridge.get_provider_info import get_provider_info
    from airflow_provider_bridge.hooks import hook_class_for

    for name in (
        "wtforms",
        "wtforms.validators",
        "flask_babel",
        "flask_appbuilder",
        "flask_appbuilder.fieldwidgets",
    ):
        monkeypatch.setitem(sys.modules, name, mock.MagicMock())
    patches = {
        "wtforms.StringField": Meta.MockStringField,
        "wtforms.IntegerField": Meta.MockIntegerField,
        "wtforms.PasswordField": Meta.MockPasswordField,
        "wtforms.BooleanField": Meta.MockBooleanField,
        "flask_babel.lazy_gettext": lambda text: text,
        "flask_appbuilder.fieldwidgets.BS3TextFieldWidget": Meta.MockAnyWidget,
        "flask_appbuilder.fieldwidgets.BS3PasswordFieldWidget": Meta.MockAnyWidget,
        "wtforms.validators.Optional": Meta.MockOptional,
        "wtforms.validators.any_of": Meta.MockEnum,
    }
    for target, value in patches.items():  # on the modules an import statement finds
        module, _, attribute = target.rpartition(".")
        monkeypatch.setattr(sys.modules[module], attribute, value)
    for conn in get_provider_info()["connection-types"]:
        hook = hook_class_for(conn["connection-type"])
        assert "get_connection_form_widgets" in hook.__dict__  # 3.1 ignores inherited ones
        fields = {name: field.param.dump() for name, field in hook.get_connection_form_widgets().items()}
        assert set(fields) == set(conn["conn-fields"])
        for name, declared in conn["conn-fields"].items():
            offered, schema = fields[name], declared["schema"]
            assert offered["schema"]["title"] == declared["label"], name
            if schema.get("format") == "password":
                assert offered["schema"]["format"] == "password"
            elif "integer" in schema["type"] or "boolean" in schema["type"]:
                assert offered["schema"]["type"] == schema["type"], name
                assert offered["value"] == schema.get("default")
            else:  # text: numbers and JSON values are typed as text there
                assert offered["schema"]["type"] == ["string", "null"], name
                default = schema.get("default")
                assert offered["value"] == (
                    default if default is None or isinstance(default, str) else str(default)
                )
            if "enum" in schema:
                assert offered["schema"]["enum"] == [v for v in schema["enum"] if v is not None]
        behaviour = hook.get_ui_field_behaviour()
        declared_behaviour = conn["ui-field-behaviour"]
        assert behaviour["hidden_fields"] == declared_behaviour["hidden-fields"]
        assert behaviour["relabeling"] == declared_behaviour["relabeling"]
        assert behaviour["placeholders"] == declared_behaviour["placeholders"]


def test_the_hooks_defaults_are_the_ones_the_connection_form_declares(
    bridgit, servicebridge, tpm, monkeypatch
):
    """Defaults are written once, in the form's declaration; a hook with no extras uses exactly those."""
    import json

    for sandbox in (bridgit, servicebridge, tpm):  # only what a connection needs, no other extra
        conn = sandbox.connection()
        conn["extra"] = {k: v for k, v in conn["extra"].items() if k in ("token_url", "account_id")}
        monkeypatch.setenv(f"AIRFLOW_CONN_{sandbox.vendor.upper()}_DEFAULT", json.dumps(conn))
    from airflow_provider_bridge.get_provider_info import get_provider_info
    from airflow_provider_bridge.hooks import hook_class_for
    from airflow_provider_bridge.options import AuthType, ClientAuth, PagingStyle

    declared = {
        c["connection-type"]: vendors()[c["connection-type"]].all_fields
        for c in get_provider_info()["connection-types"]
    }

    def default(vendor: str, name: str):
        return declared[vendor][name]["schema"]["default"]

    for vendor in declared:
        hook = hook_class_for(vendor)()
        cfg = hook.config
        for name in ("timeout", "max_retries", "max_retry_wait", "rate_limit_margin"):
            assert getattr(cfg, name) == default(vendor, name), (vendor, name)
        assert hook.client.max_pages == default(vendor, "max_pages")
        assert hook.write_settle == default(vendor, "write_settle")
    sb = hook_class_for("servicebridge")()
    assert sb.api_version == default("servicebridge", "api_version")
    extras = sb.adapter.extras
    assert extras.number("change_overlap") == default("servicebridge", "change_overlap")
    assert extras.number("session_idle_timeout") == default("servicebridge", "session_idle_timeout")
    assert sb.adapter.auth_type == default("servicebridge", "auth_type") == next(iter(AuthType))
    tpm_hook = hook_class_for("third_party_manager")()
    assert tpm_hook.adapter.path_prefix == default("third_party_manager", "path_prefix")
    assert next(iter(ClientAuth)) == default("third_party_manager", "client_auth")
    assert next(iter(PagingStyle)) == default("third_party_manager", "paging")
    bridgit = hook_class_for("bridgit_bench")().adapter.extras
    assert bridgit.boolean("use_activity_feed") is default("bridgit_bench", "use_activity_feed")


def test_the_forms_show_what_a_user_sets_and_leave_the_rest_to_the_extra_json():
    """A handful of fields per form, as official providers' forms: credentials and how to sign in;
    limits, retries, waits, margins and paging are advanced (Extra JSON), still declared once."""
    shown = {c["connection-type"]: set(c["conn-fields"]) for c in get_provider_info()["connection-types"]}
    assert shown == {
        "bridgit_bench": {"account_id"},
        "servicebridge": {"auth_type", "api_version", "token_url", "authorize_url", "scope", "refresh_token"},
        "third_party_manager": {"token_url", "scope", "client_auth"},
    }
    advanced = {"rate_limits", "timeout", "max_retries", "max_retry_wait", "rate_limit_margin", "page_size"}
    for spec in vendors().values():
        assert advanced <= set(spec.advanced_fields), spec.conn_type
        assert set(spec.advanced_fields) | set(spec.conn_fields) == set(spec.all_fields)
