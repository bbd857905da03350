"""free_port never hands one port to two services of a topology (they would both bind it later: the second fails)."""

from __future__ import annotations

from types import SimpleNamespace

from casemesh.harness import mesh


def test_a_port_handed_out_once_is_not_handed_out_again(monkeypatch):
    choices = iter([25001, 25001, 25001, 25002])  # the random choice repeats itself, as it did in CI
    monkeypatch.setattr(mesh, "_port_rng", SimpleNamespace(choice=lambda _: next(choices)))
    monkeypatch.setattr(mesh, "_handed_out", set())
    assert [mesh.free_port(), mesh.free_port()] == [25001, 25002]


def test_an_embedded_topology_has_distinct_addresses(tmp_path):
    topology = mesh.embedded_topology(["urlshortener", "idgen", "analytics"], tmp_path)
    addresses = [a for e in topology.services.values() for a in (e.address, e.metrics_address)]
    assert len(set(addresses)) == len(addresses)
