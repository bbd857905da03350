"""mTLS configuration without a network: `casemesh certs init`'s files, the topology's tls/reflection/bind fields, file checks."""

from __future__ import annotations

import ipaddress
import logging
import stat

import pytest
from cryptography import x509

from casemesh.harness.certs import CertsError, default_names, init_certs, spiffe_id
from casemesh.services.catalog import SERVICES
from casemesh.services.runtime.bind_check import BindRefused, check_binds, is_loopback
from casemesh.services.runtime.tls import TlsError, channel_credentials, load_identity, server_credentials
from casemesh.services.runtime.topology import TlsSettings, Topology, TopologyError, load_topology


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return init_certs(tmp_path_factory.mktemp("certs") / "set")


def test_certs_init_makes_a_ca_and_one_certificate_per_identity_with_its_spiffe_san(certs):
    assert list(certs.leaves) == [*SERVICES, "harness", "test"] == default_names()
    ca = x509.load_pem_x509_certificate(certs.ca.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert stat.S_IMODE((certs.directory / "ca.key").stat().st_mode) == 0o600
    assert stat.S_IMODE(certs.directory.stat().st_mode) == 0o700
    for name, (cert_path, key_path) in certs.leaves.items():
        assert stat.S_IMODE(key_path.stat().st_mode) == 0o600, name
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        cert.verify_directly_issued_by(ca)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [spiffe_id(name)]
        assert set(sans.get_values_for_type(x509.DNSName)) == {"localhost", name}
        assert set(sans.get_values_for_type(x509.IPAddress)) == {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")}
        assert cert.not_valid_before_utc < ca.not_valid_after_utc and cert.not_valid_after_utc < ca.not_valid_after_utc
    assert spiffe_id("urlshortener") == "spiffe://casemesh.local/svc/urlshortener"
    assert spiffe_id("harness") == "spiffe://casemesh.local/harness" and spiffe_id("test") == "spiffe://casemesh.local/test"


def test_certs_init_will_not_replace_a_set_unasked(certs):
    with pytest.raises(CertsError, match="exists: pass --force"):
        init_certs(certs.directory, ["harness"])
    with pytest.raises(CertsError, match="days: must be between 1 and 825"):
        init_certs(certs.directory / "other", days=0)


def test_tls_files_load_for_every_identity_and_bad_files_are_named(certs, tmp_path):
    tls = TlsSettings(dir=str(certs.directory))
    for name in certs.leaves:
        load_identity(tls, name)
    server_credentials(tls, "urlshortener"), channel_credentials(tls, "harness")
    with pytest.raises(TlsError, match=r"tls.dir \(nobody certificate\): cannot read .*nobody.pem"):
        load_identity(tls, "nobody")
    # A key that is not the certificate's, and a certificate of another CA: named, before any handshake.
    mixed = TlsSettings(ca=str(certs.ca), services={"idgen": {"cert": str(certs.leaves["idgen"][0]), "key": str(certs.leaves["test"][1])}})
    with pytest.raises(TlsError, match=r"tls.services.idgen: .*test.key is not the key of .*idgen.pem"):
        load_identity(mixed, "idgen")
    other = init_certs(tmp_path / "other", ["idgen"])
    foreign = TlsSettings(ca=str(certs.ca), services={"idgen": {"cert": str(other.leaves["idgen"][0]), "key": str(other.leaves["idgen"][1])}})
    with pytest.raises(TlsError, match="is not issued by a CA of"):
        load_identity(foreign, "idgen")
    with pytest.raises(TlsError, match="no certificate for 'idgen'"):
        load_identity(TlsSettings(ca=str(certs.ca)), "idgen")


def test_topology_tls_reflection_and_bind_fields(tmp_path):
    plain = Topology.model_validate({"services": {"urlshortener": {"address": "127.0.0.1:1"}}})
    assert plain.tls is None and plain.reflection is False and plain.allow_insecure_public_bind is False
    path = tmp_path / "t.yaml"
    path.write_text("services: {urlshortener: {address: '127.0.0.1:1'}}\ntls: {cert_dir: x}\n")
    with pytest.raises(TopologyError, match="tls.cert_dir: unknown field 'cert_dir'"):
        load_topology(path)
    path.write_text("services: {urlshortener: {address: '127.0.0.1:1'}}\ntls: {services: {}}\n")
    with pytest.raises(TopologyError, match="tls: Value error, give dir"):
        load_topology(path)
    # The shipped topology of `casemesh serve` is for local development: reflection on there.
    assert load_topology(None).reflection is True


def test_plaintext_servers_stay_on_loopback_unless_allowed(caplog):
    assert all(is_loopback(a) for a in ("127.0.0.1:1", "127.3.2.1:1", "[::1]:1", "localhost:1"))
    assert not any(is_loopback(a) for a in ("0.0.0.0:1", "[::]:1", "10.0.0.5:1", "urlshortener:50051"))
    services = {"urlshortener": {"address": "127.0.0.1:1"}, "idgen": {"address": "0.0.0.0:50052"}, "analytics": {"address": "0.0.0.0:50052"}}
    with pytest.raises(BindRefused, match=r"service idgen: refusing to serve plaintext on 0.0.0.0:50052, which is not a loopback address"):
        check_binds(Topology.model_validate({"services": services}), ["urlshortener", "idgen", "analytics"])
    with caplog.at_level(logging.WARNING, logger="casemesh.runtime"):
        allowed = check_binds(Topology.model_validate({"services": services, "allow_insecure_public_bind": True}),
                              ["urlshortener", "idgen", "analytics"])
    assert allowed == ["0.0.0.0:50052"]
    assert [r.getMessage() for r in caplog.records] == [
        "service idgen: serving plaintext on non-loopback 0.0.0.0:50052 (allow_insecure_public_bind: true): anyone who can reach it can call every RPC"]
    # With mTLS any address is allowed, silently: a client needs a certificate from the CA.
    caplog.clear()
    assert check_binds(Topology.model_validate({"services": services, "tls": {"dir": "certs"}}), ["idgen"]) == []
    assert not caplog.records


def test_the_compose_tls_override_gives_every_service_and_the_harness_the_certificates():
    from pathlib import Path

    import yaml

    deploy = Path(__file__).resolve().parents[2] / "deploy"
    base = yaml.safe_load((deploy / "compose.yaml").read_text())["services"]
    override = yaml.safe_load((deploy / "compose.tls.yaml").read_text())["services"]
    plain, tls = load_topology(deploy / "topology.yaml"), load_topology(deploy / "topology.tls.yaml")
    assert plain.tls is None and plain.allow_insecure_public_bind  # the default stays plaintext on the compose network
    assert tls.tls is not None and not tls.allow_insecure_public_bind and tls.services == plain.services
    for name in tls.services:
        mounts = dict(volume.split(":")[1::-1] for volume in override[name]["volumes"])  # target -> source
        assert mounts[base[name]["environment"]["CASEMESH_TOPOLOGY"]] == "./topology.tls.yaml"
        assert mounts[tls.tls.dir] == "./certs"
        assert override[name]["user"] == base["harness"]["user"]  # the keys are 0600, owned by whoever made them
    harness_mounts = dict(volume.split(":")[1::-1] for volume in override["harness"]["volumes"])
    assert harness_mounts[tls.tls.dir] == "./certs"
    assert override["harness"]["entrypoint"] == [*base["harness"]["entrypoint"], "--tls", tls.tls.dir]


def test_tls_option_names_the_problem(certs, tmp_path):
    from casemesh.harness.cli import _tls_option
    from casemesh.harness.errors import ConfigError

    assert _tls_option(None) is None
    assert _tls_option(str(certs.directory), services=["urlshortener"]).dir == str(certs.directory.resolve())
    with pytest.raises(ConfigError, match="auto makes certificates for the embedded mesh only"):
        _tls_option("auto")  # with --target: its CA is not one made now
    made = _tls_option("auto", services=["idgen"], auto_dir=tmp_path / "auto")
    assert (tmp_path / "auto" / "harness.pem").is_file() and made.dir == str((tmp_path / "auto").resolve())
    with pytest.raises(ConfigError, match=r"--tls.*cannot read .*video-edge.pem"):
        _tls_option(str(init_certs(tmp_path / "partial", ["harness"]).directory), services=["video-edge"])
