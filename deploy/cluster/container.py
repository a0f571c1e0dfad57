"""The entrypoint of the cluster image (deploy/cluster/Dockerfile) in docker-compose.cluster.yml.

    container.py etcd | patroni | haproxy | pgbouncer | redis | nginx    # render its configuration, become it
    container.py roles                                           # once: the app's role and database (roles.sql)
    container.py check http://127.0.0.1:8008/health              # a health check: 0 on 200
    container.py check tcp:127.0.0.1:6432                        # a health check: 0 if the port answers

Each part's configuration is rendered by the same functions from the same
templates as deploy/cluster/cluster.py renders them for one machine; only the
hosts (the compose services' names), the ports (each part's usual one) and
the folders differ. Settings come from the environment the compose file
gives; each part runs as its own unprivileged user, as on one machine.
"""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import cluster

PG_PORT, REST_PORT, HAPROXY_PORT, PGBOUNCER_PORT = 5432, 8008, 5000, 6432
ETCD_CLIENT_PORT, ETCD_PEER_PORT, NGINX_PORT, APP_PORT, REDIS_PORT = 2379, 2380, 8080, 8000, 6379
NGINX_TLS_PORT = 8443
TLS = Path("/etc/ssl/ticketbooth")  # the certificate's volume: fullchain.pem and privkey.pem
STATE = Path("/var/lib/ticketbooth-cluster")  # a volume per service
ARCHIVE = Path("/wal-archive")  # one volume shared by the database nodes


def env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise SystemExit(f"{name} is not set (docker-compose.cluster.yml gives it)")
    return value


def names(variable: str) -> list[str]:
    return [name.strip() for name in env(variable).split(",") if name.strip()]


def passwords() -> dict[str, str]:
    return {"superuser": env("PG_SUPERUSER_PASSWORD"), "replication": env("PG_REPLICATION_PASSWORD"),
            "rewind": env("PG_REWIND_PASSWORD"), "app": env("APP_DB_PASSWORD")}


def _owned(path: Path, user: str, mode: int = 0o700) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    shutil.chown(path, user, user)
    path.chmod(mode)
    return path


def _write(path: Path, text: str, user: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    shutil.chown(path, user, user)
    path.chmod(mode)
    return path


def render(part: str, state: Path = STATE) -> tuple[str, list[str], dict[Path, str]]:
    """(the user it runs as, its command line, the files to write) for one part; writes nothing itself."""
    if part == "etcd":
        name = env("ETCD_NAME")
        initial = ",".join(f"{member}=http://{member}:{ETCD_PEER_PORT}" for member in names("ETCD_MEMBERS"))
        config = cluster.etcd_config(name=name, host=name, listen_host="0.0.0.0", client_port=ETCD_CLIENT_PORT,
                                     peer_port=ETCD_PEER_PORT, data_dir=str(state / "data"), initial_cluster=initial)
        return "etcd", ["etcd", "--config-file", str(state / "etcd.yml")], {state / "etcd.yml": config}
    if part == "patroni":
        name = env("NODE_NAME")
        config = cluster.patroni_config(
            name=name, host=name, listen_host="0.0.0.0", rest_port=REST_PORT, pg_port=PG_PORT,
            data_dir=str(state / "data"), run_dir=str(state), socket_dir=str(state / "sockets"),
            etcd_hosts=",".join(f"{member}:{ETCD_CLIENT_PORT}" for member in names("ETCD_MEMBERS")),
            synchronous=env("SYNCHRONOUS_MODE") == "true", archive_dir=str(ARCHIVE), passwords=passwords(),
            client_network=env("CLIENT_NETWORK"))
        return "postgres", ["patroni", str(state / "patroni.yml")], {state / "patroni.yml": config}
    if part == "haproxy":
        nodes = [(node, node, PG_PORT, REST_PORT) for node in names("PATRONI_NODES")]
        config = cluster.haproxy_config(listen_host="0.0.0.0", port=HAPROXY_PORT, nodes=nodes)
        return "haproxy", ["haproxy", "-db", "-f", str(state / "haproxy.cfg")], {state / "haproxy.cfg": config}
    if part == "pgbouncer":
        config = cluster.pgbouncer_config(haproxy_host=env("HAPROXY_HOST"), haproxy_port=HAPROXY_PORT,
                                          listen_host="0.0.0.0", port=PGBOUNCER_PORT, run_dir=str(state))
        return "postgres", ["pgbouncer", str(state / "pgbouncer" / "pgbouncer.ini")], {
            state / "pgbouncer" / "pgbouncer.ini": config,
            state / "pgbouncer" / "userlist.txt": cluster.pgbouncer_userlist(env("APP_DB_PASSWORD"))}
    if part == "redis":
        config = cluster.redis_config(listen_host="0.0.0.0", port=REDIS_PORT, password=env("REDIS_PASSWORD"),
                                      data_dir=str(state))
        return "redis", ["redis-server", str(state / "redis.conf")], {state / "redis.conf": config}
    if part == "nginx":
        apps = [f"{app}:{APP_PORT}" for app in names("APP_HOSTS")]
        site = cluster.nginx_site(shop=apps, room=apps, listen=str(NGINX_PORT), tls_listen=str(NGINX_TLS_PORT),
                                  certificate=str(TLS / "fullchain.pem"), key=str(TLS / "privkey.pem"),
                                  cache_dir=str(state / "cache"))
        config = cluster.nginx_conf(web_dir=str(state), site=site)
        return "www-data", ["nginx", "-p", str(state), "-c", str(state / "nginx.conf"), "-g", "daemon off;"], {
            state / "nginx.conf": config}
    raise SystemExit(f"unknown part: {part}")


def become(part: str) -> None:
    user, argv, files = render(part)
    _owned(STATE, user)
    if part == "patroni":
        _owned(STATE / "sockets", user)
        _owned(ARCHIVE, user)
    if part == "nginx":
        _owned(STATE / "cache", user, 0o755)
        if not (TLS / "fullchain.pem").exists():
            # No certificate given: a self-signed one, so that TLS works from the first start.
            print(f"No certificate in {TLS}: using a self-signed one; put yours there.", file=sys.stderr)
            TLS.mkdir(parents=True, exist_ok=True)
            for path in cluster.self_signed_certificate(TLS, env("TLS_NAME")):
                shutil.chown(path, user, user)
    if part == "pgbouncer":
        _owned(STATE / "pgbouncer", user)
    for path, text in files.items():
        _write(path, text, user)
    account = pwd.getpwnam(user)
    os.initgroups(user, account.pw_gid)
    os.setgid(account.pw_gid)
    os.setuid(account.pw_uid)
    os.environ.update(HOME=account.pw_dir, USER=user)
    os.execvp(argv[0], argv)


def make_roles() -> int:
    """As cluster.py does once the first node leads: roles.sql on the primary, through HAProxy."""
    nodes = names("PATRONI_NODES")
    wanted = ["primary"] + (["sync"] if env("SYNCHRONOUS_MODE") == "true" else [])
    deadline = time.monotonic() + 300
    while not all(any(check(f"http://{node}:{REST_PORT}/{role}") == 0 for node in nodes) for role in wanted):
        if time.monotonic() > deadline:
            print(f"no {' and '.join(wanted)} after 300 s", file=sys.stderr)
            return 1
        time.sleep(1)
    run = {"PATH": "/usr/bin:/bin", "PGPASSWORD": env("PG_SUPERUSER_PASSWORD"), "PGCONNECT_TIMEOUT": "5"}
    return subprocess.run(["psql", "-v", "ON_ERROR_STOP=1", "-v", f"app_password={env('APP_DB_PASSWORD')}",
                           "-h", env("HAPROXY_HOST"), "-p", str(HAPROXY_PORT), "-U", "postgres", "-d", "postgres",
                           "-f", str(cluster.HERE / "roles.sql")], env=run).returncode


def check(target: str) -> int:
    if target.startswith("tcp:"):
        host, port = target[4:].rsplit(":", 1)
        with socket.socket() as sock:
            sock.settimeout(2)
            return 0 if sock.connect_ex((host, int(port))) == 0 else 1
    try:
        return 0 if cluster.http_status(target) == 200 else 1
    except OSError:
        return 1


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "check":
        return check(argv[1])
    if argv == ["roles"]:
        return make_roles()
    if len(argv) == 1:
        become(argv[0])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
