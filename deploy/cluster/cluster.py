"""The production topology on one machine: etcd, two PostgreSQL 15 nodes under Patroni, HAProxy, PgBouncer,
Redis for the rate limits, two app hosts, the sweep, the mail and webhook workers, and nginx in front, on
loopback ports.

    python deploy/cluster/cluster.py up --dir /tmp/tb-cluster          # until SIGTERM or Ctrl-C
    python deploy/cluster/cluster.py up --dir /tmp/tb-cluster --async  # an asynchronous standby instead

Needs root (it starts each part as its own unprivileged user: etcd, postgres,
haproxy, redis, www-data, and a `ticketbooth` system user it creates for the app)
and Debian's packages: `apt-get install patroni etcd-server pgbouncer
haproxy postgresql-15 nginx redis-server`. The rendered configuration, logs, the ports and
the generated passwords are under --dir (`cluster.json`); the same templates,
rendered with real hosts, are the several-machine profile (docs/operations.md).
SIGTERM stops everything in reverse order, each part with its own clean stop.
"""
from __future__ import annotations

import argparse
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PACKAGES = {"etcd": "etcd-server", "patroni": "patroni", "pgbouncer": "pgbouncer", "haproxy": "haproxy",
            "nginx": "nginx", "redis-server": "redis-server"}
APP_USER = "ticketbooth"
RUNUSER = shutil.which("runuser") or "/usr/sbin/runuser"
# The app's own virtualenv, on Debian's Python: one under root's home (pyenv) is not
# readable by the unprivileged user. Kept between runs, rebuilt when requirements change.
APP_VENV = Path(os.environ.get("TICKETBOOTH_VENV", "/var/lib/ticketbooth/venv"))


def missing_packages() -> list[str]:
    """Debian packages the profile needs and this machine lacks."""
    missing = [package for binary, package in PACKAGES.items()
               if not (shutil.which(binary) or Path("/usr/sbin", binary).exists())]
    if not (PG_BIN / "postgres").exists():
        missing.append("postgresql-15")
    return missing


@dataclass
class Ports:
    base: int

    def __getattr__(self, name: str) -> int:
        offsets = {"nginx": 0, "haproxy": 1, "pgbouncer": 2, "etcd_client": 3, "etcd_peer": 4, "redis": 5,
                   "nginx_tls": 6,
                   "node1_pg": 10, "node1_rest": 11, "node2_pg": 20, "node2_rest": 21, "app1": 31, "app2": 32,
                   "smtp": 40}
        if name not in offsets:
            raise AttributeError(name)
        return self.base + offsets[name]


@dataclass
class Cluster:
    """What is running, and how to reach it (written to cluster.json for tests and operators)."""

    run_dir: Path
    ports: Ports
    synchronous: bool
    passwords: dict[str, str]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def nodes(self) -> dict[str, dict]:
        return {name: {"pg_port": getattr(self.ports, f"{name}_pg"), "rest_port": getattr(self.ports, f"{name}_rest"),
                       "data_dir": str(self.run_dir / name / "data")} for name in ("node1", "node2")}

    @property
    def direct_url(self) -> str:
        """The primary through HAProxy, as the app's role (what backups and checks use)."""
        return (f"postgresql://ticketbooth:{self.passwords['app']}@127.0.0.1:{self.ports.haproxy}/ticketbooth")

    @property
    def app_url(self) -> str:
        return f"postgresql://ticketbooth:{self.passwords['app']}@127.0.0.1:{self.ports.pgbouncer}/ticketbooth"

    def describe(self) -> dict:
        return {"run_dir": str(self.run_dir), "synchronous": self.synchronous, "nginx": self.ports.nginx,
                "nginx_tls": self.ports.nginx_tls,
                "apps": [self.ports.app1, self.ports.app2], "haproxy": self.ports.haproxy,
                "pgbouncer": self.ports.pgbouncer, "etcd": self.ports.etcd_client, "redis": self.ports.redis,
                "nodes": self.nodes,
                "direct_url": self.direct_url, "app_url": self.app_url, "metrics_token": self.passwords["metrics"],
                "superuser_password": self.passwords["superuser"],
                "pids": {name: proc.pid for name, proc in self.processes.items()}}


def render(name: str, values: dict[str, str]) -> str:
    return Template((HERE / name).read_text()).substitute(values)


# The rendering of each part's configuration, shared by this one-machine runner and by the
# containers of docker-compose.cluster.yml (container.py): the same templates, the same settings.
PGBOUNCER_POOL = 20
# Everything up() starts, in the order down() stops it.
STOP_ORDER = ["nginx", "sweep", "mail", "webhooks", "smtp", "app1", "app2", "redis", "pgbouncer", "haproxy",
              "patroni-node2", "patroni-node1", "etcd"]
# The workers beside the app hosts: their `flask` commands.
WORKERS = {"sweep": ["sweep", "--interval", "1"], "mail": ["deliver-mail", "--interval", "1"],
           "webhooks": ["deliver-webhooks", "--interval", "1"]}


def etcd_config(*, name: str, host: str, listen_host: str, client_port: int, peer_port: int, data_dir: str,
                initial_cluster: str) -> str:
    return render("etcd.yml", {
        "ETCD_NAME": name, "ETCD_DATA": data_dir, "ETCD_HOST": host, "ETCD_LISTEN_HOST": listen_host,
        "ETCD_CLIENT_PORT": str(client_port), "ETCD_PEER_PORT": str(peer_port),
        "ETCD_INITIAL_CLUSTER": initial_cluster})


def patroni_config(*, name: str, host: str, listen_host: str, rest_port: int, pg_port: int, data_dir: str,
                   run_dir: str, socket_dir: str, etcd_hosts: str, synchronous: bool, archive_dir: str,
                   passwords: dict[str, str], client_network: str) -> str:
    return render("patroni.yml", {
        "NODE_NAME": name, "NODE_HOST": host, "LISTEN_HOST": listen_host, "REST_PORT": str(rest_port),
        "PG_PORT": str(pg_port), "DATA_DIR": data_dir, "RUN_DIR": run_dir, "SOCKET_DIR": socket_dir,
        "ETCD_HOSTS": etcd_hosts, "SYNCHRONOUS_MODE": "true" if synchronous else "false",
        "ARCHIVE_COMMAND": f"test ! -f {archive_dir}/%f && cp %p {archive_dir}/%f",
        "SUPERUSER_PASSWORD": passwords["superuser"], "REPLICATION_PASSWORD": passwords["replication"],
        "REWIND_PASSWORD": passwords["rewind"], "CLIENT_NETWORK": client_network})


def haproxy_config(*, listen_host: str, port: int, nodes: list[tuple[str, str, int, int]]) -> str:
    """nodes: (name, host, PostgreSQL port, Patroni REST port) each."""
    servers = "\n".join(f"    server {name} {host}:{pg_port} maxconn 200 check port {rest_port}"
                        for name, host, pg_port, rest_port in nodes)
    return render("haproxy.cfg", {"HAPROXY_HOST": listen_host, "HAPROXY_PORT": str(port), "HAPROXY_SERVERS": servers})


def pgbouncer_config(*, haproxy_host: str, haproxy_port: int, listen_host: str, port: int, run_dir: str) -> str:
    return render("pgbouncer.ini", {
        "HAPROXY_HOST": haproxy_host, "HAPROXY_PORT": str(haproxy_port), "PGBOUNCER_HOST": listen_host,
        "PGBOUNCER_PORT": str(port), "PGBOUNCER_POOL": str(PGBOUNCER_POOL), "RUN_DIR": run_dir})


def pgbouncer_userlist(app_password: str) -> str:
    return f'"ticketbooth" "{app_password}"\n'


def redis_config(*, listen_host: str, port: int, password: str, data_dir: str) -> str:
    return render("redis.conf", {"REDIS_LISTEN_HOST": listen_host, "REDIS_PORT": str(port),
                                 "REDIS_PASSWORD": password, "REDIS_DIR": data_dir})


NGINX_SITE = HERE.parent / "nginx" / "ticketbooth.conf"
NGINX_LOCATIONS = HERE.parent / "nginx" / "ticketbooth-locations.conf"


def nginx_site(*, shop: list[str], room: list[str], listen: str, tls_listen: str, certificate: str, key: str,
               cache_dir: str) -> str:
    """deploy/nginx/ticketbooth.conf with these app hosts behind its upstreams, these addresses for its plain
    and TLS servers, this certificate, and the shared locations written into both servers."""
    site = NGINX_SITE.read_text()
    locations = "".join(f"    {line}\n" if line.strip() else "\n"
                        for line in NGINX_LOCATIONS.read_text().splitlines() if not line.startswith("#"))
    return (site.replace("    server 127.0.0.1:8000;\n", "".join(f"    server {app};\n" for app in shop))
            .replace("    server 127.0.0.1:8001;\n", "".join(f"    server {app};\n" for app in room))
            .replace("listen 80;", f"listen {listen};")
            .replace("listen 443 ssl http2;", f"listen {tls_listen} ssl http2;")
            .replace("/etc/ssl/ticketbooth/fullchain.pem", certificate)
            .replace("/etc/ssl/ticketbooth/privkey.pem", key)
            .replace("/var/cache/nginx/ticketbooth", cache_dir)
            .replace("    include /etc/nginx/snippets/ticketbooth-locations.conf;\n", locations))


def self_signed_certificate(directory: Path, name: str) -> tuple[Path, Path]:
    """A certificate for `name` (a host name or an IP address) and its key, made with openssl, for a run
    with no certificate of its own (loopback, a first start of the containers, the tests)."""
    certificate, key = directory / "fullchain.pem", directory / "privkey.pem"
    alt = f"IP:{name}" if name.replace(".", "").isdigit() else f"DNS:{name}"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj",
                    f"/CN={name}", "-addext", f"subjectAltName={alt}", "-keyout", str(key), "-out", str(certificate)],
                   check=True, capture_output=True)
    return certificate, key


def nginx_conf(*, web_dir: str, site: str) -> str:
    """The whole nginx.conf for an nginx of its own (run as www-data, everything under web_dir)."""
    return f"""
worker_processes 2;
pid {web_dir}/nginx.pid;
error_log {web_dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {web_dir}/client_body;
    proxy_temp_path {web_dir}/proxy;
    fastcgi_temp_path {web_dir}/fastcgi;
    uwsgi_temp_path {web_dir}/uwsgi;
    scgi_temp_path {web_dir}/scgi;
{site}
}}
"""


def _owned(path: Path, user: str, mode: int = 0o755) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    shutil.chown(path, user, user)
    path.chmod(mode)
    return path


def _write(path: Path, text: str, user: str, mode: int = 0o644) -> Path:
    path.write_text(text)
    shutil.chown(path, user, user)
    path.chmod(mode)
    return path


def app_python() -> str:
    """The app venv's interpreter, with the run-time half of requirements.txt installed."""
    wanted = (ROOT / "requirements.txt").read_text().split("# --- development and tests only")[0]
    stamp = APP_VENV / "requirements.txt"
    python = APP_VENV / "bin" / "python"
    if not python.exists() or not stamp.exists() or stamp.read_text() != wanted:
        shutil.rmtree(APP_VENV, ignore_errors=True)
        subprocess.run(["/usr/bin/python3", "-m", "venv", str(APP_VENV)], check=True)
        (APP_VENV / "wanted.txt").write_text(wanted)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r",
                        str(APP_VENV / "wanted.txt")], check=True)
        stamp.write_text(wanted)
    return str(python)


def _ensure_app_user() -> None:
    try:
        pwd.getpwnam(APP_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        APP_USER], check=True)


def _wait(what: str, check, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{what} did not come up within {timeout:.0f} s")


def http_status(url: str, method: str = "GET", timeout: float = 2) -> int:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Runner:
    def __init__(self, run_dir: Path, base_port: int, synchronous: bool, settings: dict[str, str] | None = None):
        self.settings = settings or {}
        passwords = {k: secrets.token_urlsafe(18)
                     for k in ("superuser", "replication", "rewind", "app", "metrics", "redis")}
        self.cluster = Cluster(run_dir, Ports(base_port), synchronous, passwords)
        self.logs = run_dir / "logs"

    def _start(self, name: str, user: str, argv: list[str], env: dict[str, str] | None = None,
               cwd: Path | None = None) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")
        # runuser keeps the environment given here; --preserve-environment is not needed with env=.
        proc = subprocess.Popen([RUNUSER, "-u", user, "--", *argv], stdout=log, stderr=subprocess.STDOUT,
                                env=env or {"PATH": "/usr/sbin:/usr/bin:/bin", "LANG": "C.UTF-8"},
                                cwd=cwd or self.cluster.run_dir, start_new_session=True)
        self.cluster.processes[name] = proc
        return proc

    def up(self) -> Cluster:
        c, ports = self.cluster, self.cluster.ports
        run = _owned(c.run_dir, "root")
        _owned(self.logs, "root", 0o777)
        _ensure_app_user()
        # etcd
        etcd_dir = _owned(run / "etcd", "etcd", 0o700)
        _write(run / "etcd.yml", self.etcd_config(etcd_dir), "etcd")
        self._start("etcd", "etcd", ["etcd", "--config-file", str(run / "etcd.yml")])
        _wait("etcd", lambda: http_status(f"http://127.0.0.1:{ports.etcd_client}/health") == 200)
        # Two Patroni nodes; the first bootstraps and leads, the second clones it.
        archive = _owned(run / "wal-archive", "postgres", 0o700)
        for name, node in c.nodes.items():
            node_dir = _owned(run / name, "postgres", 0o700)
            _owned(node_dir / "sockets", "postgres", 0o700)
            _write(run / f"{name}.yml", self.patroni_config(name, archive), "postgres", 0o600)
            self._start(f"patroni-{name}", "postgres", ["patroni", str(run / f"{name}.yml")])
            if name == "node1":
                _wait("the first node as primary",
                      lambda n=node: http_status(f"http://127.0.0.1:{n['rest_port']}/primary") == 200, 120)
        node2 = c.nodes["node2"]
        _wait("the second node as standby",
              lambda: http_status(f"http://127.0.0.1:{node2['rest_port']}/replica") == 200, 120)
        if c.synchronous:
            _wait("a synchronous standby",
                  lambda: http_status(f"http://127.0.0.1:{node2['rest_port']}/sync") == 200, 180)
        self._make_role()
        # HAProxy to the primary, PgBouncer in front of it.
        _write(run / "haproxy.cfg", self.haproxy_config(), "haproxy")
        self._start("haproxy", "haproxy", ["haproxy", "-db", "-f", str(run / "haproxy.cfg")])
        _wait("HAProxy", lambda: _listening(ports.haproxy))
        bouncer = _owned(run / "pgbouncer", "postgres", 0o700)
        _write(bouncer / "userlist.txt", pgbouncer_userlist(c.passwords["app"]), "postgres", 0o600)
        _write(bouncer / "pgbouncer.ini", self.pgbouncer_config(), "postgres", 0o600)
        self._start("pgbouncer", "postgres", ["pgbouncer", str(bouncer / "pgbouncer.ini")])
        _wait("PgBouncer", lambda: _listening(ports.pgbouncer))
        # Redis for the rate limits, shared by every app worker.
        redis_dir = _owned(run / "redis", "redis", 0o700)
        _write(redis_dir / "redis.conf", self.redis_config(redis_dir), "redis", 0o600)
        self._start("redis", "redis", ["redis-server", str(redis_dir / "redis.conf")])
        _wait("Redis", lambda: _listening(ports.redis))
        self._start_app_side()
        (run / "cluster.json").write_text(json.dumps(c.describe(), indent=2))
        return c

    def etcd_config(self, etcd_dir: Path) -> str:
        ports = self.cluster.ports
        return etcd_config(name="etcd1", host="127.0.0.1", listen_host="127.0.0.1", client_port=ports.etcd_client,
                           peer_port=ports.etcd_peer, data_dir=str(etcd_dir / "data"),
                           initial_cluster=f"etcd1=http://127.0.0.1:{ports.etcd_peer}")

    def patroni_config(self, name: str, archive: Path) -> str:
        c = self.cluster
        node, node_dir = c.nodes[name], c.run_dir / name
        return patroni_config(name=name, host="127.0.0.1", listen_host="127.0.0.1", rest_port=node["rest_port"],
                              pg_port=node["pg_port"], data_dir=node["data_dir"], run_dir=str(node_dir),
                              socket_dir=str(node_dir / "sockets"), etcd_hosts=f"127.0.0.1:{c.ports.etcd_client}",
                              synchronous=c.synchronous, archive_dir=str(archive), passwords=c.passwords,
                              client_network="127.0.0.1/32")

    def haproxy_config(self) -> str:
        nodes = [(name, "127.0.0.1", node["pg_port"], node["rest_port"]) for name, node in self.cluster.nodes.items()]
        return haproxy_config(listen_host="127.0.0.1", port=self.cluster.ports.haproxy, nodes=nodes)

    def pgbouncer_config(self) -> str:
        ports = self.cluster.ports
        return pgbouncer_config(haproxy_host="127.0.0.1", haproxy_port=ports.haproxy, listen_host="127.0.0.1",
                                port=ports.pgbouncer, run_dir=str(self.cluster.run_dir))

    def redis_config(self, redis_dir: Path) -> str:
        return redis_config(listen_host="127.0.0.1", port=self.cluster.ports.redis,
                            password=self.cluster.passwords["redis"], data_dir=str(redis_dir))

    def _make_role(self) -> None:
        c = self.cluster
        node1 = c.nodes["node1"]
        env = {"PATH": "/usr/bin:/bin", "PGPASSWORD": c.passwords["superuser"]}
        subprocess.run(["psql", "-v", "ON_ERROR_STOP=1", "-v", f"app_password={c.passwords['app']}",
                        "-h", "127.0.0.1", "-p", str(node1["pg_port"]), "-U", "postgres", "-d", "postgres",
                        "-f", str(HERE / "roles.sql")], check=True, env=env, capture_output=True)

    def _app_env(self, **extra: str) -> dict[str, str]:
        c = self.cluster
        env = {
            "PATH": f"{APP_VENV / 'bin'}:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(c.run_dir),
            "DATABASE_URL": c.app_url, "DB_STARTUP_OPTIONS": "0", "SECRET_KEY": c.passwords["app"] + "-secret",
            "METRICS_TOKEN": c.passwords["metrics"], "PUBLIC_URL": f"http://127.0.0.1:{c.ports.nginx}",
            "PROXY_FIX_HOPS": "1", "FLASK_APP": "wsgi.py", "LOG_LEVEL": "WARNING",
            # nginx stamps X-Request-Start: the waiting rooms follow the shop's queue.
            "WAITING_ROOM_SHOP_DELAY_MS": "50",
            # Loopback without TLS: the session cookie must travel over plain http here.
            "SESSION_COOKIE_SECURE": "0", "RATELIMIT_ENABLED": os.environ.get("RATELIMIT_ENABLED", "1"),
            "SMTP_URL": f"smtp://127.0.0.1:{c.ports.smtp}", "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
            "REDIS_URL": f"redis://:{c.passwords['redis']}@127.0.0.1:{c.ports.redis}/0",
        }
        env.update(self.settings)
        env.update(extra)
        return env

    def _start_app_side(self) -> None:
        c, ports, python = self.cluster, self.cluster.ports, app_python()
        app_dir = _owned(c.run_dir / "app", APP_USER)
        for name in ("app1", "app2"):
            metrics = _owned(app_dir / f"{name}-metrics", APP_USER)
            # Each host migrates on start (one at a time, under the launcher's lock), then becomes gunicorn.
            self._start(name, APP_USER, [python, "-m", "webapp.launcher", "serve", "--host", "127.0.0.1",
                                         "--port", str(getattr(ports, name)), "--workers", "2", "--threads", "4"],
                        env=self._app_env(PROMETHEUS_MULTIPROC_DIR=str(metrics)), cwd=ROOT)
        for name in ("app1", "app2"):
            _wait(name, lambda n=name: http_status(f"http://127.0.0.1:{getattr(ports, n)}/healthz") == 200, 120)
        mail = _owned(app_dir / "mail", APP_USER)
        self._start("smtp", APP_USER, [python, "-m", "webapp.mailcatcher", "--port", str(ports.smtp),
                                       "--dir", str(mail)], env=self._app_env(), cwd=ROOT)
        for name, argv in WORKERS.items():
            self._start(name, APP_USER, [python, "-m", "flask", *argv], env=self._app_env(), cwd=ROOT)
        self._start_nginx()

    def _start_nginx(self) -> None:
        c, ports = self.cluster, self.cluster.ports
        web = _owned(c.run_dir / "nginx", "www-data")
        _owned(web / "cache", "www-data")
        certificate, key = self_signed_certificate(_owned(web / "tls", "www-data", 0o700), "127.0.0.1")
        for path in (certificate, key):
            shutil.chown(path, "www-data", "www-data")
        _write(web / "nginx.conf", nginx_conf(web_dir=str(web), site=self.nginx_site(web, certificate, key)),
               "www-data")
        self._start("nginx", "www-data", ["nginx", "-p", str(web), "-c", str(web / "nginx.conf"),
                                          "-g", "daemon off;"])
        _wait("nginx", lambda: http_status(f"http://127.0.0.1:{ports.nginx}/healthz") == 200)
        _wait("nginx's TLS", lambda: _listening(ports.nginx_tls))

    def nginx_site(self, web: Path, certificate: Path, key: Path) -> str:
        ports = self.cluster.ports
        apps = [f"127.0.0.1:{ports.app1}", f"127.0.0.1:{ports.app2}"]
        return nginx_site(shop=apps, room=apps, listen=f"127.0.0.1:{ports.nginx}",
                          tls_listen=f"127.0.0.1:{ports.nginx_tls}", certificate=str(certificate), key=str(key),
                          cache_dir=str(web / "cache"))

    def down(self) -> None:
        """Each part's own clean stop, front to back; the database last but etcd."""
        for name in STOP_ORDER:
            proc = self.cluster.processes.get(name)
            if proc is None or proc.poll() is not None:
                continue
            # To the program itself: runuser would pass SIGTERM on but SIGKILL it
            # two seconds later, before Patroni has stopped its postgres.
            started = time.monotonic()
            for child in _children(proc.pid) or [proc.pid]:
                os.kill(child, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
                how = "stopped"
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
                how = "killed after 60 s"
            # How long each part takes to stop, for whoever wonders why a stop is slow.
            print(f"{name}: {how} in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
        # A postgres its Patroni did not stop (Patroni killed, or the node was mid-restart).
        for node in self.cluster.nodes.values():
            if (Path(node["data_dir"]) / "postmaster.pid").exists():
                subprocess.run([RUNUSER, "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), "stop", "-m", "fast",
                                "-D", node["data_dir"]], capture_output=True, timeout=60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start everything and stay until SIGTERM or Ctrl-C")
    up.add_argument("--dir", type=Path, required=True, help="an empty folder for data, configuration and logs")
    up.add_argument("--base-port", type=int, default=25000)
    up.add_argument("--async", dest="asynchronous", action="store_true", help="an asynchronous standby")
    up.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="an app setting (repeatable)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("Run as root: each part is started as its own unprivileged user.", file=sys.stderr)
        return 2
    if missing := missing_packages():
        print(f"Missing: apt-get update && apt-get install {' '.join(missing)}", file=sys.stderr)
        return 2
    settings = dict(item.split("=", 1) for item in args.set)
    runner = Runner(args.dir.resolve(), args.base_port, synchronous=not args.asynchronous, settings=settings)
    stopping: list[int] = []

    def stop(*_) -> None:
        if not stopping:
            stopping.append(1)
            if not started:
                raise SystemExit(0)  # still starting: stop what is up already (finally, below)

    started: list[int] = []
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        cluster = runner.up()
        started.append(1)
        print(json.dumps(cluster.describe(), indent=2), flush=True)
        print(f"Up: http://127.0.0.1:{cluster.ports.nginx}/ (SIGTERM or Ctrl-C stops it)", flush=True)
        while not stopping:
            time.sleep(0.5)
    finally:
        runner.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
