"""``--target`` names the services the workload calls; one the mesh only starts behind them is explained, not just refused."""

from __future__ import annotations

from typer.testing import CliRunner

from casemesh.harness.cli import app


def test_a_target_for_a_service_behind_the_workload_says_why_it_is_not_needed():
    done = CliRunner().invoke(app, ["run", "url-shortener", "--target", "urlshortener=127.0.0.1:1", "--target", "idgen=127.0.0.1:2"])
    assert done.exit_code == 2
    message = " ".join(done.stderr.split())
    assert "'idgen' is not a service the workload calls (urlshortener)" in message
    assert "your urlshortener calls your idgen itself" in message and "bring-your-own-service.md" in message


def test_a_target_for_an_unknown_service_names_the_ones_called():
    done = CliRunner().invoke(app, ["run", "url-shortener", "--target", "nope=127.0.0.1:1"])
    assert done.exit_code == 2
    message = " ".join(done.stderr.split())
    assert "'nope' is not a service the workload calls (urlshortener)" in message and "calls your" not in message
