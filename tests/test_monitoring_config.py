"""The monitoring configuration in deploy/: Prometheus (deploy/prometheus: prometheus.yml, the
alerting rules and their unit tests) and Alertmanager (deploy/alertmanager/alertmanager.yml),
validated by their own tools: promtool (Debian package `prometheus`) and amtool (Debian package
`prometheus-alertmanager`), both installed by `make tools` (run by `make test` as root).

A missing tool fails these tests: the configuration is part of the product.

Besides the tools' own checks: every alert has a severity, a summary, a description and a runbook
link; every alert is unit-tested firing and not firing (a near miss); every metric an expression
reads is one the tradewatch service exports; Alertmanager sends every alert where its rule file
says (trading rules through tradewatch's webhook, pipeline rules directly, the Watchdog to the
dead man's switch); the host names and ports match docker-compose.yml.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tradewatch.web.trading_metrics import EXPORTED_METRICS

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULE_FILES = {"trading_rules.yml": "tradewatch", "pipeline_rules.yml": "direct"}  # file -> its `delivery` label
RULE_TESTS_DIR = PROMETHEUS_DIR / "tests"
ALERTMANAGER_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
COMPOSE_FILE = ROOT / "docker-compose.yml"

TOOLS = {"promtool": "prometheus", "amtool": "prometheus-alertmanager"}

# What the tradewatch HTTP service exports on /metrics: its own table (tradewatch/web/trading_metrics.py).
EXPECTED_EXPORTED_METRICS = frozenset(EXPORTED_METRICS)
EXPECTED_HISTOGRAMS = frozenset(name for name, spec in EXPORTED_METRICS.items() if spec.kind == "histogram")
# Series Prometheus makes itself for every target.
PROMETHEUS_SYNTHETIC = frozenset({"up"})

SEVERITIES = ("critical", "warning", "info")
# Which categories each rule file holds: trading conditions (risk limits included) go through
# tradewatch's router; only tradewatch's own health and the Watchdog bypass it.
CATEGORIES = {"trading_rules.yml": ("risk", "execution", "system"), "pipeline_rules.yml": ("pipeline", "meta")}
ALWAYS_FIRING = frozenset({"Watchdog"})  # no near miss, no `for:`

# Receivers (deploy/alertmanager/alertmanager.yml) each kind of alert must reach.
WATCHDOG_RECEIVERS = ["deadmans-switch"]
TRADEWATCH_RECEIVERS = ["tradewatch"]
DIRECT_RECEIVERS = {"critical": ["pagerduty-operations", "slack-operations"], "warning": ["slack-operations"],
                    "info": ["slack-operations"]}


# --- helpers --------------------------------------------------------------------------------------


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} not found: `make tools` installs it (as root: apt-get install -y --no-install-recommends "
            f"{TOOLS[name]}); make test runs it",
            pytrace=False,
        )
    return path


def _run(argv: list[str], *, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(cwd), "LANG": "C.UTF-8"})


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _alert_rules() -> list[tuple[str, dict]]:
    """(rule file name, rule) for every alerting rule."""
    rules = []
    for file_name in RULE_FILES:
        for group in _load(PROMETHEUS_DIR / file_name)["groups"]:
            rules.extend((file_name, rule) for rule in group["rules"] if "alert" in rule)
    return rules


def _rule_tests() -> dict[Path, dict]:
    return {path: _load(path) for path in sorted(RULE_TESTS_DIR.glob("*.yml"))}


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*")
_PROMQL_WORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "and", "or",
                           "unless", "bool", "inf", "nan", "atan2"})


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (histogram series by their base name)."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)          # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)         # range and subquery durations
    text = _GROUPING.sub(" ", text)                 # by (...), on (...), group_left(...)
    text = re.sub(r"\boffset\s+-?\w+", " ", text)   # offset durations
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name = match.group()
        if text[match.end():].lstrip().startswith("(") or name.lower() in _PROMQL_WORDS:
            continue  # a function, an aggregation or a keyword
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        names.add(base if base in EXPECTED_HISTOGRAMS else name)
    return names


def _series_metric(series: str) -> str:
    return series.split("{", 1)[0].strip()


# --- the tools ------------------------------------------------------------------------------------


def test_promtool_checks_the_prometheus_config_and_its_rule_files(tmp_path):
    """`promtool check config` (which also checks the rule files). Secret files (Flower's
    password) exist only where Prometheus runs: the check runs on a copy in which each *_file
    path points at a placeholder file, everything else byte for byte the same."""
    promtool = _tool("promtool")
    config = PROMETHEUS_CONFIG.read_text()
    secret_paths = re.findall(r"^\s*\w+_file:\s*(\S+)\s*$", config, flags=re.M)
    assert secret_paths, "expected Flower's basic_auth password_file in prometheus.yml"
    for number, secret in enumerate(secret_paths):
        placeholder = tmp_path / f"secret-{number}"
        placeholder.write_text("placeholder\n")
        config = config.replace(secret, str(placeholder))
    (tmp_path / "prometheus.yml").write_text(config)
    for file_name in RULE_FILES:
        shutil.copy(PROMETHEUS_DIR / file_name, tmp_path / file_name)
    result = _run([promtool, "check", "config", str(tmp_path / "prometheus.yml")], cwd=tmp_path)
    assert result.returncode == 0, _output(result)
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in result.stdout, _output(result)


def test_promtool_checks_the_rule_files():
    promtool = _tool("promtool")
    result = _run([promtool, "check", "rules", *(str(PROMETHEUS_DIR / name) for name in RULE_FILES)])
    assert result.returncode == 0, _output(result)


def test_promtool_runs_the_rule_unit_tests():
    promtool = _tool("promtool")
    test_files = sorted(RULE_TESTS_DIR.glob("*.yml"))
    assert test_files, f"no rule unit tests in {RULE_TESTS_DIR}"
    result = _run([promtool, "test", "rules", *(str(path) for path in test_files)])
    assert result.returncode == 0, _output(result)
    assert result.stdout.count("SUCCESS") == len(test_files), _output(result)


def test_amtool_checks_the_alertmanager_config():
    amtool = _tool("amtool")
    result = _run([amtool, "check-config", str(ALERTMANAGER_CONFIG)])
    assert result.returncode == 0, _output(result)
    assert "SUCCESS" in result.stdout, _output(result)


@pytest.mark.parametrize("index", range(len(_alert_rules())))
def test_alertmanager_sends_each_alert_where_its_rule_file_says(index):
    """`amtool config routes test` with each rule's labels: trading rules reach tradewatch's
    webhook only, pipeline rules PagerDuty and/or Slack directly, the Watchdog the dead man's switch."""
    amtool = _tool("amtool")
    file_name, rule = _alert_rules()[index]
    labels = {"alertname": rule["alert"], **rule.get("labels", {})}
    if rule["alert"] == "Watchdog":
        expected = WATCHDOG_RECEIVERS
    elif RULE_FILES[file_name] == "tradewatch":
        expected = TRADEWATCH_RECEIVERS
    else:
        expected = DIRECT_RECEIVERS[labels["severity"]]
    result = _run([amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}",
                   *(f"{name}={value}" for name, value in sorted(labels.items()))])
    assert result.returncode == 0, _output(result)
    assert result.stdout.strip().split(",") == expected, (file_name, labels, _output(result))


# --- the rules ------------------------------------------------------------------------------------


def test_every_alert_has_a_severity_a_summary_and_a_runbook():
    rules = _alert_rules()
    assert len({rule["alert"] for _, rule in rules}) >= 17, sorted(rule["alert"] for _, rule in rules)
    for file_name, rule in rules:
        name, labels, annotations = rule["alert"], rule.get("labels", {}), rule.get("annotations", {})
        where = f"{file_name}: {name}"
        assert labels.get("severity") in SEVERITIES, f"{where}: severity label {labels.get('severity')!r}"
        assert labels.get("category") in CATEGORIES[file_name], f"{where}: category label {labels.get('category')!r}"
        assert labels.get("delivery") == RULE_FILES[file_name], f"{where}: delivery label {labels.get('delivery')!r}"
        for text in ("summary", "description"):
            assert annotations.get(text, "").strip(), f"{where}: no {text} annotation"
            assert text not in labels, f"{where}: {text} is text for people: an annotation, not a label"
        assert annotations.get("runbook_url") == f"README.md#runbook-{name.lower()}", f"{where}: runbook_url"
        for label, value in labels.items():
            # A templated label changes the alert's identity with its value: one alert becomes many.
            assert "{{" not in str(value), f"{where}: label {label} is templated"
        if name not in ALWAYS_FIRING:
            assert "for" in rule, f"{where}: no `for:` duration"


def test_rule_expressions_read_only_exported_metrics():
    known = EXPECTED_EXPORTED_METRICS | PROMETHEUS_SYNTHETIC
    for file_name, rule in _alert_rules():
        used = metric_names(rule["expr"])
        if rule["alert"] not in ALWAYS_FIRING:
            assert used, f"{file_name}: {rule['alert']}: no metric found in {rule['expr']!r}"
        assert used <= known, f"{file_name}: {rule['alert']} reads metrics not exported: {sorted(used - known)}"
        for annotation in rule.get("annotations", {}).values():
            for query in re.findall(r'query\s+"([^"]*)"', annotation):
                assert metric_names(query) <= known, f"{file_name}: {rule['alert']}: template query {query!r}"


def test_the_metric_name_extraction_is_not_vacuous():
    expr = ('histogram_quantile(0.95, sum by (le) (rate(trading_order_latency_seconds_bucket{le!="x"}[5m]))) > 2 '
            'and on () (up{job="tradewatch"} offset 10m == 1) or absent(foo_total) * 1e3 unless sum(rate(bar[1m])) by (x)')
    assert metric_names(expr) == {"trading_order_latency_seconds", "up", "foo_total", "bar"}


def test_rule_unit_tests_use_exported_series():
    known = EXPECTED_EXPORTED_METRICS | PROMETHEUS_SYNTHETIC
    for path, document in _rule_tests().items():
        for case in document["tests"]:
            for series in case.get("input_series", []):
                assert metric_names(_series_metric(series["series"])) <= known, (path.name, case["name"], series["series"])


def test_every_alert_is_unit_tested_firing_and_not_firing():
    """Each rule (alertname and severity) fires in some test; each alertname also has a case
    where it must not fire (a near miss), except the always-firing Watchdog."""
    firing: dict[str, set[tuple[str, str]]] = {}
    silent: dict[str, set[str]] = {}
    for path, document in _rule_tests().items():
        for rule_file in document["rule_files"]:
            name = Path(rule_file).name
            firing.setdefault(name, set())
            silent.setdefault(name, set())
            for case in document["tests"]:
                for check in case.get("alert_rule_test", []):
                    expected = check.get("exp_alerts") or []
                    if not expected:
                        silent[name].add(check["alertname"])
                    for alert in expected:
                        firing[name].add((check["alertname"], alert["exp_labels"]["severity"]))
    assert set(firing) == set(RULE_FILES), f"unit tests load {sorted(firing)}, expected {sorted(RULE_FILES)}"
    for file_name, rule in _alert_rules():
        variant = (rule["alert"], rule["labels"]["severity"])
        assert variant in firing[file_name], f"{file_name}: no unit test where {variant} fires"
        if rule["alert"] not in ALWAYS_FIRING:
            assert rule["alert"] in silent[file_name], f"{file_name}: no near-miss unit test for {rule['alert']}"


# --- consistency with the deployment ---------------------------------------------------------------


def _compose_services() -> dict:
    return _load(COMPOSE_FILE)["services"]


def _container_port(service: dict) -> set[str]:
    return {str(port).rsplit(":", 1)[-1] for port in service.get("ports", [])}


def test_prometheus_scrapes_the_compose_services():
    config = _load(PROMETHEUS_CONFIG)
    assert sorted(config["rule_files"]) == sorted(RULE_FILES)
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"tradewatch", "flower", "prometheus"}, sorted(jobs)
    services = _compose_services()
    for job_name, service_name, port, interval in (("tradewatch", "web", "8000", "5s"), ("flower", "flower", "5555", "15s")):
        job = jobs[job_name]
        assert job["static_configs"][0]["targets"] == [f"{service_name}:{port}"], job
        assert job.get("scrape_interval") == interval, job
        assert service_name in services and port in _container_port(services[service_name]), (service_name, port)
    assert services["web"]["command"][:2] == ["tradewatch", "web"], services["web"]["command"]
    # Flower runs only with a login: Prometheus sends one, its password from a file.
    assert "--basic-auth=" in " ".join(services["flower"]["command"])
    assert set(jobs["flower"]["basic_auth"]) == {"username", "password_file"}, jobs["flower"]["basic_auth"]


def test_alertmanager_posts_to_the_tradewatch_webhook_with_a_token_from_a_file():
    from tradewatch.web.app import WEBHOOK_PATH

    config = _load(ALERTMANAGER_CONFIG)
    receivers = {receiver["name"]: receiver for receiver in config["receivers"]}
    (webhook,) = receivers["tradewatch"]["webhook_configs"]
    assert webhook["url"] == f"http://web:8000{WEBHOOK_PATH}", webhook["url"]
    authorization = webhook["http_config"]["authorization"]
    assert authorization.get("type", "Bearer") == "Bearer" and "credentials" not in authorization
    assert authorization["credentials_file"].startswith("/run/secrets/")
    assert webhook["send_resolved"] is True and webhook["max_alerts"] <= 500


def test_alertmanager_reads_every_secret_from_a_file():
    config = _load(ALERTMANAGER_CONFIG)
    assert not set(config.get("global", {})) & {"slack_api_url", "pagerduty_url", "opsgenie_api_key", "smtp_auth_password"}
    receivers = {receiver["name"]: receiver for receiver in config["receivers"]}
    for pagerduty in receivers["pagerduty-operations"]["pagerduty_configs"]:
        assert "routing_key_file" in pagerduty and not {"routing_key", "service_key"} & set(pagerduty), pagerduty
    for slack in receivers["slack-operations"]["slack_configs"]:
        assert "api_url_file" in slack and "api_url" not in slack, slack


def test_critical_alerts_mute_their_own_warnings():
    config = _load(ALERTMANAGER_CONFIG)
    rules = [rule for rule in config["inhibit_rules"]
             if rule["source_matchers"] == ['severity="critical"'] and rule["target_matchers"] == ['severity="warning"']]
    assert rules and "alertname" in rules[0]["equal"], config["inhibit_rules"]


@pytest.mark.parametrize(("service_name", "config_path", "mount", "tool"), [
    ("prometheus", PROMETHEUS_CONFIG, "./deploy/prometheus:/etc/prometheus:ro", "promtool"),
    ("alertmanager", ALERTMANAGER_CONFIG, "./deploy/alertmanager:/etc/alertmanager:ro", "amtool"),
])
def test_compose_runs_the_validated_config_with_its_secret_files(service_name, config_path, mount, tool):
    """docker-compose.yml mounts the directory validated here, provides every /run/secrets/ file
    the configuration reads, and runs the version of the tool that validated it."""
    service = _compose_services()[service_name]
    assert mount in service["volumes"], service["volumes"]
    assert f"--config.file={mount.split(':')[1]}/{config_path.name}" in service["command"], service["command"]
    targets = {secret["target"] for secret in service.get("secrets", [])}
    read = set(re.findall(r"_file:\s*/run/secrets/(\S+)", config_path.read_text()))
    assert read and read <= targets, f"{service_name}: reads {sorted(read)}, compose mounts {sorted(targets)}"
    declared = _load(COMPOSE_FILE)["secrets"]
    assert all("file" in declared[secret["source"]] for secret in service["secrets"])
    result = _run([_tool(tool), "--version"])
    version = re.search(r"version (\d+\.\d+\.\d+)", result.stdout + result.stderr)
    assert version, _output(result)
    assert service["image"].endswith(f":v{version.group(1)}"), f"{service['image']} is not validated by {tool} {version.group(1)}"
