"""Real servers started by the tests: PostgreSQL, an S3 API (moto's server) and MLflow.

Each runs as a child process on a free loopback port and is stopped afterwards; nothing is
assumed to be running. PostgreSQL is a throwaway cluster (``initdb`` in a temporary folder,
trust authentication on 127.0.0.1 only); when the tests run as root it runs as the
``postgres`` user, as PostgreSQL refuses root.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from helpers import closed_port

BIN = Path(sys.executable).parent
S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "fmnist-test",
    "AWS_SECRET_ACCESS_KEY": "fmnist-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}
"""moto accepts any credentials; clients still need some."""
INITDB_OPTIONS = ("-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
"""A superuser ``postgres`` trusted on the loopback socket, no fsync: a throwaway cluster."""


class ServerStartError(RuntimeError):
    """A server did not start; the message carries the end of its log."""


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise ServerStartError(f"{url} exited: {log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=2, trust_env=False).status_code < 500:
                return
        if time.monotonic() > deadline:
            raise ServerStartError(f"{url} not up in {timeout_s} s: {log.read_text()[-3000:]}")
        time.sleep(0.25)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def postgres_binary(name: str) -> str:
    """The path of a PostgreSQL server program (PATH, else Debian's versioned folder)."""
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if found is None:
        raise FileNotFoundError(
            f"{name} not found: install PostgreSQL (apt-get install postgresql)"
        )
    return found


@dataclass(frozen=True)
class Postgres:
    """A running throwaway cluster."""

    port: int
    data_dir: Path

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database`` (user ``postgres``, trust authentication)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"


@contextlib.contextmanager
def postgres_cluster() -> Iterator[Postgres]:
    """``initdb`` + ``pg_ctl start`` in a temporary folder; stopped and deleted afterwards."""
    root = Path(tempfile.mkdtemp(prefix="fmnist-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    data = root / "data"
    port = closed_port()
    try:
        subprocess.run(
            [*run_as, postgres_binary("initdb"), "-D", str(data), *INITDB_OPTIONS],
            check=True,
            capture_output=True,
        )
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        start = ["-l", str(root / "server.log"), "-w", "-t", "60", "start"]
        subprocess.run(
            [*run_as, postgres_binary("pg_ctl"), "-D", str(data), "-o", options, *start],
            check=True,
            capture_output=True,
        )
        try:
            yield Postgres(port, data)
        finally:
            subprocess.run(
                [*run_as, postgres_binary("pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                check=False,
                capture_output=True,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def create_database(server: Postgres, name: str) -> str:
    """Create database ``name``; its URL."""
    import psycopg2

    connection = psycopg2.connect(host="127.0.0.1", port=server.port, user="postgres")
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        connection.close()
    return server.url(name)


@dataclass(frozen=True)
class S3Api:
    """A running S3 API with one bucket."""

    endpoint: str
    bucket: str

    @property
    def env(self) -> dict[str, str]:
        """What a client (boto3, s3fs, MLflow) needs to reach it."""
        return {
            **S3_CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint,
        }

    def keys(self, prefix: str = "") -> list[str]:
        """Every object key under ``prefix``."""
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=S3_CREDENTIALS["AWS_DEFAULT_REGION"],
        )
        keys: list[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return keys


@contextlib.contextmanager
def s3_api(log_dir: Path, bucket: str = "fmnist") -> Iterator[S3Api]:
    """moto's S3 server on a free port, with ``bucket`` created."""
    import boto3

    port = closed_port()
    log = log_dir / "moto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        _wait_http(f"{endpoint}/moto-api/", proc, log, timeout_s=60)
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=S3_CREDENTIALS["AWS_DEFAULT_REGION"],
        ).create_bucket(Bucket=bucket)
        yield S3Api(endpoint, bucket)
    finally:
        _stop(proc)


@contextlib.contextmanager
def mlflow_server(backend_uri: str, s3: S3Api, log_dir: Path) -> Iterator[str]:
    """``mlflow server`` with ``backend_uri`` (PostgreSQL) and artifacts proxied to ``s3``;
    yields its URL."""
    port = closed_port()
    log = log_dir / "mlflow-server.log"
    options = ["--backend-store-uri", backend_uri, "--workers", "1"]
    options += ["--artifacts-destination", f"s3://{s3.bucket}/mlflow-artifacts"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "FMNIST_"))}
    env |= s3.env
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), *options],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=log_dir,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_http(f"{url}/health", proc, log, timeout_s=180)
        yield url
    finally:
        _stop(proc)
