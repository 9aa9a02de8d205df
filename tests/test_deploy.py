"""The deployment description: docker-compose.yml (validated and rendered by `docker-compose
config`, the Debian package, v1.29; no Docker engine needed), the Procfile, the Dockerfile.

A missing `docker-compose` binary fails these tests: the deployment is part of the product.
"""

from __future__ import annotations

import functools
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
PROCFILE = ROOT / "Procfile"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

# DESIGN.md, "Queues": one worker pool per queue.
QUEUES = ("audit", "analysis", "alerts", "dashboard", "reports")
WORKERS = {"ingest": "audit", "analysis": "analysis", "alerts": "alerts", "dashboard": "dashboard", "reports": "reports"}
TRADEWATCH_SERVICES = ("migrate", *WORKERS, "web", "beat", "flower")
CELERY_APP = "tradewatch.tasks.app"
REPORTS_VISIBILITY_TIMEOUT_SECONDS = 7200

REQUIRED = {
    "POSTGRES_PASSWORD": "test-only-postgres-password",
    "FLOWER_BASIC_AUTH": "operator:test-only-flower-password",
}
SECRET_PASSTHROUGH = ("TRADEWATCH_PAGERDUTY_ROUTING_KEY", "TRADEWATCH_SLACK_WEBHOOK_URL", "TRADEWATCH_ALERTMANAGER_WEBHOOK_TOKEN")

DOCKER_COMPOSE_MISSING = (
    "docker-compose not found: install the Debian package (apt-get install -y docker-compose); "
    "make test does this when run as root"
)


# --- docker-compose ---------------------------------------------------------------------------


def _docker_compose() -> str:
    path = shutil.which("docker-compose")
    if path is None:
        pytest.fail(DOCKER_COMPOSE_MISSING, pytrace=False)
    return path


def _compose_config(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` with exactly `env` (plus PATH/HOME): nothing leaks in from the
    caller's shell or from a .env file beside the compose file."""
    binary = _docker_compose()
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    full_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8", **env}
    return subprocess.run(
        [binary, "--file", str(COMPOSE_FILE), "--env-file", str(empty_env_file), "config"],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@functools.cache
def _rendered() -> dict:
    """The configuration as docker-compose resolves it (anchors merged, variables interpolated).
    A plain cached function, not a fixture: a missing docker-compose fails each test rather than
    erroring in setup."""
    with tempfile.TemporaryDirectory() as directory:
        result = _compose_config(Path(directory), dict(REQUIRED))
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    return yaml.safe_load(result.stdout)


def _service(rendered: dict, name: str) -> dict:
    services = rendered["services"]
    assert name in services, f"service {name!r} missing from docker-compose.yml (have {sorted(services)})"
    return services[name]


def _argv(service: dict) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def _option(argv: list[str], *names: str) -> str | None:
    """The value of an option given as `--name value` or `--name=value`."""
    for index, arg in enumerate(argv):
        for name in names:
            if arg == name and index + 1 < len(argv):
                return argv[index + 1]
            if name.startswith("--") and arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def _queues(argv: list[str]) -> list[str]:
    value = _option(argv, "-Q", "--queues")
    return value.split(",") if value else []


def test_compose_file_validates_with_the_required_variables(tmp_path):
    result = _compose_config(tmp_path, dict(REQUIRED))
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"


@pytest.mark.parametrize("variable", sorted(REQUIRED))
def test_compose_file_refuses_to_render_without_a_required_variable(tmp_path, variable):
    env = {name: value for name, value in REQUIRED.items() if name != variable}
    result = _compose_config(tmp_path, env)
    assert result.returncode != 0, f"docker-compose config accepted the file with {variable} unset:\n{result.stdout}"
    assert variable in result.stderr, f"the error does not name {variable}:\n{result.stderr}"


def test_redis_is_a_durable_broker_that_never_evicts():
    rendered = _rendered()
    redis = _service(rendered, "redis")
    assert str(redis["image"]).startswith("redis:7")
    argv = _argv(redis)
    assert _option(argv, "--appendonly") == "yes", argv
    assert _option(argv, "--appendfsync") == "everysec", argv
    assert _option(argv, "--maxmemory-policy") == "noeviction", argv
    assert any(str(volume).split(":")[1] == "/data" for volume in redis["volumes"]), redis["volumes"]
    assert rendered["volumes"], "named volumes missing"
    assert "redis-cli ping" in " ".join(redis["healthcheck"]["test"])


def test_postgres_takes_its_password_from_the_environment():
    rendered = _rendered()
    postgres = _service(rendered, "postgres")
    assert str(postgres["image"]).startswith("postgres:16")
    assert postgres["environment"]["POSTGRES_PASSWORD"] == REQUIRED["POSTGRES_PASSWORD"]
    assert {"POSTGRES_DB", "POSTGRES_USER"} <= set(postgres["environment"])
    assert any(str(volume).split(":")[1] == "/var/lib/postgresql/data" for volume in postgres["volumes"])
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])


def test_every_tradewatch_process_shares_one_image_and_connection_settings():
    rendered = _rendered()
    services = {name: _service(rendered, name) for name in TRADEWATCH_SERVICES}
    images = {name: service["image"] for name, service in services.items()}
    assert len(set(images.values())) == 1, images
    builds = {name: repr(service.get("build")) for name, service in services.items()}
    assert len(set(builds.values())) == 1, builds
    for key in ("TRADEWATCH_DATABASE_URL", "TRADEWATCH_BROKER_URL", "TRADEWATCH_REDIS_URL"):
        values = {name: service["environment"].get(key) for name, service in services.items()}
        assert len(set(values.values())) == 1 and None not in values.values(), (key, values)
    environment = services["ingest"]["environment"]
    assert environment["TRADEWATCH_DATABASE_URL"].startswith("postgresql")
    assert f":{REQUIRED['POSTGRES_PASSWORD']}@postgres:5432/" in environment["TRADEWATCH_DATABASE_URL"]
    assert environment["TRADEWATCH_BROKER_URL"].startswith("redis://redis:6379/")
    assert environment["TRADEWATCH_REDIS_URL"].startswith("redis://redis:6379/")


def test_receiver_secrets_are_passed_through_never_written_in_the_file(tmp_path):
    rendered = _rendered()
    # Unset where docker-compose runs: unset in the container (null), not an empty or made-up value.
    for name in TRADEWATCH_SERVICES:
        environment = _service(rendered, name)["environment"]
        for secret in SECRET_PASSTHROUGH:
            assert secret in environment, f"{name} does not pass {secret} through"
            assert environment[secret] is None, f"{name} sets {secret} to {environment[secret]!r} in the file"
    # Set: it reaches every tradewatch process.
    env = {**REQUIRED, **{secret: f"value-of-{secret.lower()}" for secret in SECRET_PASSTHROUGH}}
    result = _compose_config(tmp_path, env)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    for name in TRADEWATCH_SERVICES:
        for secret in SECRET_PASSTHROUGH:
            assert services[name]["environment"][secret] == env[secret], (name, secret)


def test_processes_wait_for_healthy_services_and_a_completed_migration():
    rendered = _rendered()
    for name in TRADEWATCH_SERVICES:
        service = _service(rendered, name)
        depends_on = service["depends_on"]
        assert depends_on["postgres"]["condition"] == "service_healthy", name
        if name == "migrate":
            continue
        assert depends_on["redis"]["condition"] == "service_healthy", name
        assert depends_on["migrate"]["condition"] == "service_completed_successfully", name
        assert service["restart"] == "unless-stopped", name


def test_migrate_is_a_one_shot_schema_upgrade():
    rendered = _rendered()
    migrate = _service(rendered, "migrate")
    assert _argv(migrate) == ["tradewatch", "db", "upgrade"]
    assert migrate["restart"] == "no"
    assert "migrate" not in migrate["depends_on"]


@pytest.mark.parametrize(("service_name", "queue"), sorted(WORKERS.items()))
def test_each_queue_has_its_own_worker_pool(service_name, queue):
    rendered = _rendered()
    argv = _argv(_service(rendered, service_name))
    assert argv[:4] == ["celery", "-A", CELERY_APP, "worker"], argv
    assert _queues(argv) == [queue], f"{service_name} consumes {_queues(argv)}, expected only {queue!r}"
    # Prefetch comes from settings (TRADEWATCH_WORKER_PREFETCH_MULTIPLIER, default 1), not the command line.
    assert _option(argv, "--prefetch-multiplier") is None, argv
    assert (_option(argv, "-n", "--hostname") or "").startswith(f"{service_name}@"), argv


def test_ingest_runs_single_process_workers_replicated_per_core():
    """Ingest is CPU-bound per batch: solo workers (no hand-off to a pool child), two replicas."""
    ingest = _service(_rendered(), "ingest")
    argv = _argv(ingest)
    assert _option(argv, "--pool", "-P") == "solo", argv
    assert _option(argv, "--concurrency", "-c") is None, argv
    assert ingest["deploy"]["replicas"] == 2, ingest.get("deploy")
    for name in ("analysis", "alerts", "reports"):
        assert _option(_argv(_service(_rendered(), name)), "--pool", "-P") in (None, "prefork"), name
    # The dashboard snapshot: one process, one tick at a time.
    assert _option(_argv(_service(_rendered(), "dashboard")), "--pool", "-P") == "solo"


def test_every_queue_is_consumed_exactly_once():
    rendered = _rendered()
    consumed = [queue for name in WORKERS for queue in _queues(_argv(_service(rendered, name)))]
    assert sorted(consumed) == sorted(QUEUES)


def test_only_the_reports_pool_has_a_long_visibility_timeout():
    rendered = _rendered()
    reports = _service(rendered, "reports")["environment"]
    assert int(reports["TRADEWATCH_VISIBILITY_TIMEOUT_SECONDS"]) == REPORTS_VISIBILITY_TIMEOUT_SECONDS
    for name in ("ingest", "analysis", "alerts"):
        environment = _service(rendered, name)["environment"]
        # Unset: the short default from tradewatch.tasks.settings (about a minute).
        assert "TRADEWATCH_VISIBILITY_TIMEOUT_SECONDS" not in environment, name


def test_beat_keeps_its_schedule_state_on_a_volume():
    rendered = _rendered()
    beat = _service(rendered, "beat")
    argv = _argv(beat)
    assert argv[:4] == ["celery", "-A", CELERY_APP, "beat"], argv
    schedule = _option(argv, "--schedule", "-s")
    assert schedule == "/var/lib/tradewatch/celerybeat-schedule", argv
    mounts = [str(volume).split(":")[1] for volume in beat.get("volumes", [])]
    assert "/var/lib/tradewatch" in mounts, mounts
    assert beat.get("deploy", {}).get("replicas", 1) == 1, "beat must run exactly once"


def test_flower_requires_a_login():
    rendered = _rendered()
    flower = _service(rendered, "flower")
    argv = _argv(flower)
    assert argv[:4] == ["celery", "-A", CELERY_APP, "flower"], argv
    assert _option(argv, "--basic-auth") == REQUIRED["FLOWER_BASIC_AUTH"], argv
    assert _option(argv, "--port") == "5555", argv
    assert any(":5555:5555" in str(port) or str(port).endswith("5555") for port in flower["ports"]), flower["ports"]


def test_one_shared_service_definition_merged_by_every_tradewatch_service():
    """In the file itself (before docker-compose merges it): each tradewatch service is
    `<<: *tradewatch`, the one extension-field definition."""
    root = yaml.compose(COMPOSE_FILE.read_text())
    top = {key.value: value for key, value in root.value}
    shared = top.get("x-tradewatch")
    assert shared is not None, "x-tradewatch extension field missing"
    services = {key.value: value for key, value in top["services"].value}
    for name in TRADEWATCH_SERVICES:
        merged = [value for key, value in services[name].value if key.tag == "tag:yaml.org,2002:merge"]
        assert merged and merged[0] is shared, f"service {name} does not merge x-tradewatch with `<<: *tradewatch`"


# --- Procfile -------------------------------------------------------------------------------------

PROCFILE_LINE = re.compile(r"^(?P<name>[A-Za-z0-9_-]+):\s*(?P<command>\S.*)$")


def _procfile() -> dict[str, str]:
    processes: dict[str, str] = {}
    for number, line in enumerate(PROCFILE.read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = PROCFILE_LINE.match(line)
        assert match, f"Procfile line {number} is not `name: command`: {line!r}"
        assert match["name"] not in processes, f"Procfile line {number}: {match['name']!r} defined twice"
        processes[match["name"]] = match["command"]
    return processes


def _procfile_celery(command: str) -> tuple[dict[str, str], list[str]]:
    """(environment prefix, celery argv) of a Procfile command such as
    `VAR=value celery -A ... worker` or `mkdir -p var && celery -A ... beat`."""
    segment = next(part for part in command.split("&&") if "celery" in part)
    words = shlex.split(segment)
    env: dict[str, str] = {}
    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
        key, value = words.pop(0).split("=", 1)
        env[key] = value
    return env, words


# Ingest runs as several single-process workers, one Procfile line (and node name) each.
PROCFILE_INGEST = ("ingest-1", "ingest-2")
PROCFILE_WORKERS = {**{name: "audit" for name in PROCFILE_INGEST}, **{k: v for k, v in WORKERS.items() if k != "ingest"}}


def test_procfile_lines_parse():
    processes = _procfile()
    assert set(processes) == {*PROCFILE_WORKERS, "web", "beat", "flower"}, sorted(processes)


def test_procfile_has_workers_for_every_queue():
    processes = _procfile()
    consumed = set()
    for name, queue in PROCFILE_WORKERS.items():
        _env, argv = _procfile_celery(processes[name])
        assert argv[:4] == ["celery", "-A", CELERY_APP, "worker"], argv
        assert _queues(argv) == [queue], (name, argv)
        assert _option(argv, "-n", "--hostname") == f"{name}@%h", (name, argv)
        consumed.add(queue)
    assert sorted(consumed) == sorted(QUEUES)


def test_procfile_ingest_workers_are_single_process():
    processes = _procfile()
    for name in PROCFILE_INGEST:
        _env, argv = _procfile_celery(processes[name])
        assert _option(argv, "--pool", "-P") == "solo", argv


def test_procfile_reports_worker_has_the_long_visibility_timeout():
    processes = _procfile()
    env, _argv_ = _procfile_celery(processes["reports"])
    assert int(env["TRADEWATCH_VISIBILITY_TIMEOUT_SECONDS"]) == REPORTS_VISIBILITY_TIMEOUT_SECONDS
    for name in (*PROCFILE_INGEST, "analysis", "alerts"):
        assert "TRADEWATCH_VISIBILITY_TIMEOUT_SECONDS" not in processes[name], name


def test_procfile_beat_and_flower():
    processes = _procfile()
    _env, beat = _procfile_celery(processes["beat"])
    assert beat[:4] == ["celery", "-A", CELERY_APP, "beat"], beat
    assert _option(beat, "--schedule", "-s"), beat
    _env, flower = _procfile_celery(processes["flower"])
    assert flower[:4] == ["celery", "-A", CELERY_APP, "flower"], flower
    assert "FLOWER_BASIC_AUTH:?" in processes["flower"], "flower must refuse to start without FLOWER_BASIC_AUTH"


def test_procfile_flower_refuses_to_start_without_a_login():
    command = _procfile()["flower"]
    segment = command.replace("celery ", "echo ", 1)  # the shell expansion only, nothing started
    result = subprocess.run(["sh", "-c", segment], env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=10)
    assert result.returncode != 0 and "FLOWER_BASIC_AUTH" in result.stderr, (result.returncode, result.stderr)


# --- Dockerfile -----------------------------------------------------------------------------------


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_dockerfile_builds_the_ops_install_as_a_non_root_user():
    instructions = _dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim"), instructions[0]
    runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    assert re.search(r"pip install [\"']?\.\[ops\]", runs), runs
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), users


def test_dockerfile_holds_no_secrets():
    for keyword, rest in _dockerfile_instructions():
        if keyword in ("ENV", "ARG"):
            assert not re.search(r"PASSWORD|SECRET|TOKEN|ROUTING_KEY|WEBHOOK|DATABASE_URL|BROKER_URL", rest, re.I), rest


def test_dockerignore_keeps_local_state_out_of_the_build_context():
    patterns = {line.strip().strip("/") for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")}
    for required in (".venv", ".git", "**/__pycache__", "var", ".env"):
        assert required in patterns, f".dockerignore does not exclude {required}"
