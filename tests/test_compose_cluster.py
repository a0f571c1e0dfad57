"""docker-compose.cluster.yml against deploy/cluster: the same parts, wired the same way, with the same settings
and health checks as cluster.py runs on one machine.

Docker is not run here (no daemon on the test machines): the file is parsed as
compose reads it (YAML with its anchors and merges, `${VAR:-default}` and
`${VAR:?message}` filled in), each cluster container's configuration is
rendered by its own entrypoint (deploy/cluster/container.py) from the
environment the file gives it, and that is compared, setting by setting,
with what cluster.py renders for its loopback run.
"""
from __future__ import annotations

import configparser
import re
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "deploy" / "cluster"))

import cluster  # noqa: E402
import container  # noqa: E402

SECRETS = {name: f"{name.lower()}-value" for name in (
    "SECRET_KEY", "PG_SUPERUSER_PASSWORD", "PG_REPLICATION_PASSWORD", "PG_REWIND_PASSWORD", "APP_DB_PASSWORD",
    "METRICS_TOKEN", "REDIS_PASSWORD")}
# cluster.py's parts, and the compose services that stand for each.
PARTS = {"etcd": ["etcd1", "etcd2", "etcd3"], "patroni": ["pg1", "pg2"], "haproxy": ["haproxy"],
         "roles": ["roles"], "pgbouncer": ["pgbouncer"], "redis": ["redis"], "app": ["app1", "app2"],
         "sweep": ["sweep"], "mail": ["mail"], "webhooks": ["webhooks"], "nginx": ["nginx"]}


def interpolate(value, variables: dict[str, str]):
    """What compose does to every string: ${VAR}, ${VAR:-default}, ${VAR:?message}."""
    if isinstance(value, dict):
        return {key: interpolate(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, variables) for item in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match) -> str:
        name, operator, rest = match.group(1), match.group(2), match.group(3) or ""
        if variables.get(name):
            return variables[name]
        if operator == ":?":
            raise KeyError(f"{name}: {rest}")
        return rest

    return re.sub(r"\$\{([A-Z_]+)(?:(:-|:\?)([^}]*))?\}", one, value)


@pytest.fixture(scope="module")
def compose() -> dict:
    raw = yaml.safe_load((ROOT / "docker-compose.cluster.yml").read_text())
    return interpolate(raw, SECRETS)


@pytest.fixture(scope="module")
def loopback(tmp_path_factory) -> cluster.Runner:
    """cluster.py's runner, for its rendering only: nothing is started."""
    return cluster.Runner(tmp_path_factory.mktemp("loopback"), 27500, synchronous=True)


@pytest.fixture
def rendered(compose, tmp_path, monkeypatch):
    """service name → (user, argv, {file name: text}) as its container's entrypoint renders it."""
    def render(service: str):
        spec = compose["services"][service]
        for name, value in spec.get("environment", {}).items():
            monkeypatch.setenv(name, str(value))
        user, argv, files = container.render(spec["command"][0], state=tmp_path / service)
        return user, argv, {path.name: text for path, text in files.items()}
    return render


def test_the_secrets_are_required_not_defaulted():
    raw = yaml.safe_load((ROOT / "docker-compose.cluster.yml").read_text())
    for name in SECRETS:
        with pytest.raises(KeyError, match=name):
            interpolate(raw, {k: v for k, v in SECRETS.items() if k != name})


def test_it_has_every_part_cluster_py_starts(compose):
    services = compose["services"]
    assert set(services) == {name for names in PARTS.values() for name in names}
    # Each part cluster.py starts has its services here; smtp is its local stand-in for a mail provider.
    stands_for = {"etcd": PARTS["etcd"], "patroni-node1": ["pg1"], "patroni-node2": ["pg2"], "app1": ["app1"],
                  "app2": ["app2"], "smtp": [], **{part: PARTS[part] for part in (
                      "haproxy", "pgbouncer", "redis", "sweep", "mail", "webhooks", "nginx")}}
    assert set(stands_for) == set(cluster.STOP_ORDER)
    assert {name for names in stands_for.values() for name in names} | {"roles"} == set(services)
    for service in PARTS["etcd"] + PARTS["patroni"] + ["haproxy", "roles", "pgbouncer", "redis", "nginx"]:
        assert services[service]["build"]["dockerfile"] == "deploy/cluster/Dockerfile"
    for service in PARTS["app"] + list(cluster.WORKERS):
        assert services[service]["build"] == "."
    # The workers run what cluster.py runs for them.
    for name, argv in cluster.WORKERS.items():
        assert services[name]["entrypoint"] == ["flask", *argv]


def test_the_cluster_image_has_the_packages_cluster_py_needs():
    dockerfile = (ROOT / "deploy" / "cluster" / "Dockerfile").read_text()
    installed = set(re.search(r"apt-get install[^\n]*\n(?:[^\n]*\\\n)*[^\n]*", dockerfile).group(0).split())
    assert set(cluster.PACKAGES.values()) | {"postgresql-15"} <= installed


def test_etcd_members_form_one_cluster(compose, rendered, loopback, tmp_path):
    ours = yaml.safe_load(loopback.etcd_config(tmp_path))
    members = {}
    for service in PARTS["etcd"]:
        user, argv, files = rendered(service)
        config = yaml.safe_load(files["etcd.yml"])
        assert user == "etcd" and argv[0] == "etcd"
        assert set(config) == set(ours)
        assert {k: config[k] for k in ("initial-cluster-state", "initial-cluster-token", "enable-v2",
                                       "enable-grpc-gateway")} == {k: ours[k] for k in (
            "initial-cluster-state", "initial-cluster-token", "enable-v2", "enable-grpc-gateway")}
        assert config["name"] == service and config["advertise-client-urls"] == f"http://{service}:2379"
        members[service] = config
    # Every member names all three, at the peer URL each advertises.
    expected = ",".join(f"{name}={config['initial-advertise-peer-urls']}" for name, config in members.items())
    assert {config["initial-cluster"] for config in members.values()} == {expected}


def test_patroni_nodes_have_cluster_py_settings(compose, rendered, loopback):
    etcd_urls = {f"{name}:2379" for name in PARTS["etcd"]}
    subnet = compose["networks"]["cluster"]["ipam"]["config"][0]["subnet"]
    for service in PARTS["patroni"]:
        user, argv, files = rendered(service)
        config = yaml.safe_load(files["patroni.yml"])
        ours = yaml.safe_load(loopback.patroni_config("node1", Path("/archive")))
        assert user == "postgres" and argv[0] == "patroni"
        # The leader key's timing, synchronous mode (on by default), replication and archiving: identical.
        dcs, our_dcs = config["bootstrap"]["dcs"], ours["bootstrap"]["dcs"]
        archive, our_archive = (d["postgresql"]["parameters"].pop("archive_command") for d in (dcs, our_dcs))
        assert dcs == our_dcs and dcs["synchronous_mode"] is True
        assert archive == "test ! -f /wal-archive/%f && cp %p /wal-archive/%f"
        assert our_archive == "test ! -f /archive/%f && cp %p /archive/%f"
        assert f"wal-archive:{container.ARCHIVE}" in compose["services"][service]["volumes"]
        assert config["bootstrap"]["initdb"] == ours["bootstrap"]["initdb"]
        assert config["tags"] == ours["tags"]
        assert config["postgresql"]["authentication"].keys() == ours["postgresql"]["authentication"].keys()
        assert config["postgresql"]["pg_hba"] == [line.replace("127.0.0.1/32", subnet)
                                                  for line in ours["postgresql"]["pg_hba"]]
        assert config["restapi"]["connect_address"] == f"{service}:{container.REST_PORT}"
        assert config["postgresql"]["connect_address"] == f"{service}:{container.PG_PORT}"
        assert set(config["etcd3"]["hosts"].split(",")) == etcd_urls
        # The health check asks this node's REST API.
        assert f"http://127.0.0.1:{container.REST_PORT}/health" in compose["services"][service]["healthcheck"]["test"]
    # An asynchronous standby is one setting away, as with cluster.py --async.
    assert compose["services"]["pg1"]["environment"]["SYNCHRONOUS_MODE"] == "true"


def test_haproxy_reaches_the_primary_by_patronis_check(compose, rendered, loopback):
    _, _, files = rendered("haproxy")
    ours = loopback.haproxy_config()

    def without_servers(text: str) -> list[str]:
        return [line for line in text.splitlines() if not line.strip().startswith(("server ", "bind ", "#"))]

    assert without_servers(files["haproxy.cfg"]) == without_servers(ours)
    assert "option httpchk OPTIONS /primary" in files["haproxy.cfg"]
    servers = re.findall(r"server (\S+) (\S+) maxconn 200 check port (\d+)", files["haproxy.cfg"])
    assert servers == [(node, f"{node}:{container.PG_PORT}", str(container.REST_PORT)) for node in PARTS["patroni"]]
    assert f"bind 0.0.0.0:{container.HAPROXY_PORT}" in files["haproxy.cfg"]
    assert compose["services"]["haproxy"]["healthcheck"]["test"][-1] == f"tcp:127.0.0.1:{container.HAPROXY_PORT}"
    assert set(compose["services"]["haproxy"]["depends_on"]) == set(PARTS["patroni"])


def test_pgbouncer_is_in_transaction_mode_in_front_of_haproxy(compose, rendered, loopback):
    _, _, files = rendered("pgbouncer")
    theirs, ours = configparser.ConfigParser(), configparser.ConfigParser()
    theirs.read_string(files["pgbouncer.ini"])
    ours.read_string(loopback.pgbouncer_config())
    local = {"listen_addr", "listen_port", "auth_file", "logfile", "pidfile"}
    assert {k: v for k, v in theirs["pgbouncer"].items() if k not in local} == {
        k: v for k, v in ours["pgbouncer"].items() if k not in local}
    assert theirs["pgbouncer"]["pool_mode"] == "transaction"
    assert theirs["databases"]["ticketbooth"] == f"host=haproxy port={container.HAPROXY_PORT} dbname=ticketbooth"
    assert files["userlist.txt"] == cluster.pgbouncer_userlist(SECRETS["APP_DB_PASSWORD"])
    assert compose["services"]["pgbouncer"]["healthcheck"]["test"][-1] == f"tcp:127.0.0.1:{container.PGBOUNCER_PORT}"


def test_app_hosts_and_workers_have_cluster_py_settings(compose, loopback):
    ours = loopback._app_env()
    for service in PARTS["app"] + list(cluster.WORKERS):
        env = compose["services"][service]["environment"]
        url = urlparse(env["DATABASE_URL"])
        assert (url.hostname, url.port, url.path) == ("pgbouncer", container.PGBOUNCER_PORT, "/ticketbooth")
        assert url.username == "ticketbooth" and url.password == SECRETS["APP_DB_PASSWORD"]
        for name in ("DB_STARTUP_OPTIONS", "PROXY_FIX_HOPS", "WAITING_ROOM_SHOP_DELAY_MS"):
            assert env[name] == ours[name], name
        for name in ("SECRET_KEY", "METRICS_TOKEN", "PUBLIC_URL", "SMTP_URL"):
            assert name in env and name in ours
        # The rate limits in the one Redis, with its password, as on one machine.
        redis = urlparse(env["REDIS_URL"])
        assert (redis.hostname, redis.port, redis.password) == ("redis", container.REDIS_PORT,
                                                                 SECRETS["REDIS_PASSWORD"])
        assert urlparse(ours["REDIS_URL"]).password == loopback.cluster.passwords["redis"]
        # After the role exists and through a healthy PgBouncer, as cluster.py starts them.
        depends = compose["services"][service]["depends_on"]
        if service in PARTS["app"]:
            assert depends == {"pgbouncer": {"condition": "service_healthy"},
                               "redis": {"condition": "service_healthy"},
                               "roles": {"condition": "service_completed_successfully"}}
            assert "http://127.0.0.1:8000/healthz" in compose["services"][service]["healthcheck"]["test"][-1]
        else:
            assert depends == {"app1": {"condition": "service_healthy"}}
            assert compose["services"][service]["healthcheck"] == {"disable": True}


def test_redis_keeps_only_counters_behind_a_password(compose, rendered, loopback, tmp_path):
    user, argv, files = rendered("redis")
    assert user == "redis" and argv[0] == "redis-server"

    def settings(text: str) -> dict[str, str]:
        pairs = (line.split(None, 1) for line in text.splitlines() if line.strip() and not line.startswith("#"))
        return {key: value for key, value in pairs}

    theirs, ours = settings(files["redis.conf"]), settings(loopback.redis_config(tmp_path))
    local = {"bind", "port", "requirepass", "dir"}
    assert {k: v for k, v in theirs.items() if k not in local} == {k: v for k, v in ours.items() if k not in local}
    assert theirs["requirepass"] == SECRETS["REDIS_PASSWORD"] and theirs["port"] == str(container.REDIS_PORT)
    assert compose["services"]["redis"]["healthcheck"]["test"][-1] == f"tcp:127.0.0.1:{container.REDIS_PORT}"


def test_roles_are_made_once_the_primary_and_its_synchronous_standby_are_up(compose, monkeypatch):
    spec = compose["services"]["roles"]
    assert spec["command"] == ["roles"] and spec["environment"]["HAPROXY_HOST"] == "haproxy"
    assert spec["environment"]["PATRONI_NODES"].split(",") == PARTS["patroni"]
    asked: list[str] = []
    for name, value in spec["environment"].items():
        monkeypatch.setenv(name, str(value))
    monkeypatch.setattr(container, "check", lambda url: asked.append(url) or 0)
    monkeypatch.setattr(container.subprocess, "run", lambda argv, env: type("Done", (), {"returncode": 0})())
    assert container.make_roles() == 0
    assert {url.rsplit("/", 1)[1] for url in asked} == {"primary", "sync"}


def test_nginx_balances_both_app_hosts(compose, rendered, loopback, tmp_path):
    user, argv, files = rendered("nginx")
    assert user == "www-data" and argv[0] == "nginx"
    site = files["nginx.conf"]
    for upstream in ("ticketbooth_shop", "ticketbooth_room"):
        block = re.search(rf"upstream {upstream} {{(.*?)}}", site, re.S).group(1)
        assert re.findall(r"server (\S+);", block) == [f"{app}:8000" for app in PARTS["app"]]
    # TLS terminated here, with the certificate from its volume.
    assert f"listen {container.NGINX_TLS_PORT} ssl http2;" in site
    assert f"ssl_certificate {container.TLS}/fullchain.pem;" in site
    assert f"tls:{container.TLS}" in compose["services"]["nginx"]["volumes"]
    # Everything else is the loopback run's site, line for line.
    ours = cluster.nginx_conf(web_dir=str(tmp_path), site=loopback.nginx_site(tmp_path, Path("c"), Path("k")))

    local = re.compile(r"\s*(server \S+;|listen |pid |error_log |\S+_temp_path |ssl_certificate)")

    def general(text: str) -> list[str]:
        return [line.strip() for line in text.splitlines()
                if line.strip() and not local.match(line) and "proxy_cache_path" not in line]

    assert general(site) == general(ours)
    spec = compose["services"]["nginx"]
    assert spec["ports"] == [f"8080:{container.NGINX_PORT}", f"8443:{container.NGINX_TLS_PORT}"]
    assert f"listen {container.NGINX_PORT};" in site
    assert spec["healthcheck"]["test"][-1] == f"http://127.0.0.1:{container.NGINX_PORT}/healthz"
    assert set(spec["depends_on"]) == set(PARTS["app"])


def test_every_long_running_part_has_a_health_check_and_starts_after_what_it_needs(compose):
    services = compose["services"]
    for name, spec in services.items():
        if name == "roles" or name in cluster.WORKERS:
            continue
        check = spec["healthcheck"]["test"]
        assert check[0] == "CMD" and check[-1], name
    # The order cluster.py starts them in: etcd, the nodes, HAProxy, the role and PgBouncer, the apps, the rest.
    assert set(services["pg1"]["depends_on"]) == set(PARTS["etcd"])
    assert set(services["roles"]["depends_on"]) == {"haproxy"}
    assert set(services["pgbouncer"]["depends_on"]) == {"haproxy"}
