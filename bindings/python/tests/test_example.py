"""examples/smtp_starttls.py against the test SMTP server."""

from __future__ import annotations

import os
import subprocess
import sys

import servers

EXAMPLE = servers.REPO / "bindings" / "python" / "examples" / "smtp_starttls.py"


def run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    src = str(servers.REPO / "bindings" / "python" / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, str(EXAMPLE), *args], capture_output=True, text=True,
                          timeout=60, env=env)


def test_example_upgrades(smtp_server: int, certs: dict) -> None:
    r = run("127.0.0.1", str(smtp_server), "--cafile", certs["ca"], "--timeout", "10")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "C: STARTTLS" in r.stdout
    assert "-- TLS on: TLSv1." in r.stdout
    assert "S: 221" in r.stdout


def test_example_reports_certificate_failure(smtp_server: int) -> None:
    r = run("127.0.0.1", str(smtp_server), "--timeout", "10")
    assert r.returncode == 1
    assert "TU_E_CERTIFICATE" in r.stderr


def test_example_reports_injection(injecting_smtp_server: int, certs: dict) -> None:
    r = run("127.0.0.1", str(injecting_smtp_server), "--cafile", certs["ca"], "--timeout", "10")
    assert r.returncode == 1
    assert "TU_E_PROTOCOL" in r.stderr
