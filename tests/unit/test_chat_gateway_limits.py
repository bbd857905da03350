"""The gateways' Connect streams get admission slots of their own (ServiceDefinition.default_limits), under the topology's."""

from __future__ import annotations

from casemesh.services.catalog import SERVICES
from casemesh.services.chat.gateway.service import CONNECT_SERVICE, DELIVERY_SERVICE
from casemesh.services.chat.gateway.settings import CONNECT_STREAM_SLOTS
from casemesh.services.runtime.admission import Admission, limits_from_policy
from casemesh.services.runtime.topology import ServerPolicy


def test_each_gateway_shard_is_catalogued_under_its_own_name_with_stream_slots_apart_from_unary_work():
    one, two = SERVICES["chat-gateway-1"], SERVICES["chat-gateway-2"]
    assert (one.name, two.name) == ("chat-gateway-1", "chat-gateway-2")
    assert one.default_limits == {CONNECT_SERVICE: CONNECT_STREAM_SLOTS}
    admission = Admission(limits_from_policy(ServerPolicy(), one.default_limits))
    assert admission.gate(CONNECT_SERVICE, "Connect").service_limiter.limit == CONNECT_STREAM_SLOTS
    assert admission.gate(DELIVERY_SERVICE, "Deliver").service_limiter.limit == 256  # unary work keeps the default


def test_the_topologys_server_limits_win_over_a_definitions_default():
    policy = ServerPolicy(limits={CONNECT_SERVICE: 10})
    assert limits_from_policy(policy, {CONNECT_SERVICE: CONNECT_STREAM_SLOTS}).limits == {CONNECT_SERVICE: 10}
    assert limits_from_policy(ServerPolicy()).limits == {}
