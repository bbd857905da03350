"""The mesh secret (services/runtime/secrets.py): sources, refusals, derived keys and key ids; `casemesh serve` without one."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from casemesh.harness.cli import app
from casemesh.services.runtime.secrets import (PREVIOUS_SECRETS_FILE_ENV, PUBLIC_DEV_SECRET, SECRET_ENV, SECRET_FILE_ENV,
                                               SERVICE_TOKEN, UPLOAD_TOKEN, MeshSecret, SecretError, generate_secret,
                                               load_mesh_secret)

GOOD = "0123456789abcdef" * 4


def test_the_secret_comes_from_the_variable_or_a_file(tmp_path):
    assert load_mesh_secret({SECRET_ENV: GOOD}).current == GOOD
    path = tmp_path / "secret"
    path.write_text(f"  {GOOD}\n")
    assert load_mesh_secret({SECRET_FILE_ENV: str(path)}).current == GOOD


@pytest.mark.parametrize("environ, message", [
    ({}, "no mesh secret: set CASEMESH_SECRET or CASEMESH_SECRET_FILE"),
    ({SECRET_ENV: PUBLIC_DEV_SECRET}, "public development constant"),
    ({SECRET_ENV: "short-but-varied-123"}, "too weak"),
    ({SECRET_ENV: "a" * 64}, "too weak"),
    ({SECRET_ENV: GOOD, SECRET_FILE_ENV: "/x"}, "both CASEMESH_SECRET and CASEMESH_SECRET_FILE"),
    ({SECRET_FILE_ENV: "/nonexistent/secret"}, "CASEMESH_SECRET_FILE: cannot read /nonexistent/secret"),
])
def test_a_missing_weak_or_public_secret_is_refused_without_echoing_it(environ, message):
    with pytest.raises(SecretError, match=message) as refused:
        load_mesh_secret(environ)
    assert PUBLIC_DEV_SECRET not in str(refused.value) or "public development constant" in message
    assert "short-but-varied-123" not in str(refused.value)


def test_previous_secrets_file_lists_keys_still_accepted(tmp_path):
    old = generate_secret()
    listed = tmp_path / "previous"
    listed.write_text(f"# rotated out on Monday\n{old}\n\n")
    secret = load_mesh_secret({SECRET_ENV: GOOD, PREVIOUS_SECRETS_FILE_ENV: str(listed)})
    assert secret.previous == (old,)
    ring, old_ring = secret.keyring(UPLOAD_TOKEN), MeshSecret(old).keyring(UPLOAD_TOKEN)
    assert ring.current_kid != old_ring.current_kid and ring.key(old_ring.current_kid) == old_ring.current_key
    listed.write_text(PUBLIC_DEV_SECRET)
    with pytest.raises(SecretError, match="entry 1 is the public development constant"):
        load_mesh_secret({SECRET_ENV: GOOD, PREVIOUS_SECRETS_FILE_ENV: str(listed)})


def test_each_purpose_has_its_own_key_and_the_kid_is_a_short_hash():
    secret = MeshSecret(GOOD)
    service, upload = secret.keyring(SERVICE_TOKEN), secret.keyring(UPLOAD_TOKEN)
    assert service.current_key != upload.current_key and len(service.current_key) == 32
    assert len(service.current_kid) == 8 and int(service.current_kid, 16) >= 0
    assert MeshSecret(GOOD).keyring(SERVICE_TOKEN) == service  # derivation is deterministic: every process agrees
    assert GOOD not in repr(secret)


@pytest.mark.parametrize("environ, expected", [
    ({SECRET_ENV: None, SECRET_FILE_ENV: None}, "no mesh secret"),
    ({SECRET_ENV: PUBLIC_DEV_SECRET, SECRET_FILE_ENV: None}, "public development constant"),
])
def test_casemesh_serve_refuses_to_start_without_a_usable_secret(environ, expected):
    result = CliRunner().invoke(app, ["serve", "--no-supervise", "idgen"], env=environ)
    assert result.exit_code == 2, result.output
    assert expected in " ".join(result.output.split())


def test_the_deploy_files_require_a_secret_and_hold_none():
    from pathlib import Path

    import yaml

    deploy = Path(__file__).resolve().parents[2] / "deploy"
    compose = yaml.safe_load((deploy / "compose.yaml").read_text())
    served = {name: s for name, s in compose["services"].items() if "serve" in (s.get("command") or [])}
    assert served, "no casemesh serve service in deploy/compose.yaml"
    for name, service in served.items():  # compose stops with a message when CASEMESH_SECRET is unset
        assert service["environment"][SECRET_ENV].startswith("${CASEMESH_SECRET:?"), name
    for path in deploy.iterdir():
        if path.is_file():
            assert PUBLIC_DEV_SECRET not in path.read_text(errors="replace"), path
