"""``casemesh run --set SERVICE.KEY=VALUE``: assignments are checked together, and errors name what is wrong."""

from __future__ import annotations

import pytest

from casemesh.harness.errors import ConfigError
from casemesh.harness.profile import load_profile, with_settings
from casemesh.services.runtime.component import RuntimeContext
from casemesh.services.runtime.topology import Endpoint, Topology, TopologyError
from casemesh.services.social.tweets.settings import TweetSettings


def test_a_check_across_two_keys_sees_every_assignment_whatever_their_order():
    profile = load_profile("social-for-you")
    # max_pending_signals must be at least signal_batch_size (500 by default): 100 alone is refused, with 50 it is not.
    for order in (["social-tweets.max_pending_signals=100", "social-tweets.signal_batch_size=50"],
                  ["social-tweets.signal_batch_size=50", "social-tweets.max_pending_signals=100"]):
        changed = with_settings(profile, order)
        assert changed.settings["social-tweets"] == {"record_signals": True, "max_pending_signals": 100, "signal_batch_size": 50}
    with pytest.raises(ConfigError) as error:
        with_settings(profile, ["social-tweets.max_pending_signals=100"])
    assert error.value.field == "--set"
    assert error.value.message.startswith("social-tweets: ") and "max_pending_signals (100) must be at least signal_batch_size (500)" in error.value.message


def test_a_field_error_still_names_the_field():
    with pytest.raises(ConfigError) as error:
        with_settings(load_profile("social-for-you"), ["social-tweets.signal_batch_size=0"])
    assert error.value.message.startswith("social-tweets.signal_batch_size: ")


def test_the_runtime_names_the_service_of_a_check_across_keys_without_a_dangling_dot():
    topology = Topology(services={"social-tweets": Endpoint(address="127.0.0.1:1")},
                        settings={"social-tweets": {"max_pending_signals": 10, "signal_batch_size": 20}})
    with pytest.raises(TopologyError, match=r"^settings\.social-tweets: .*max_pending_signals \(10\)"):
        RuntimeContext(topology).settings("social-tweets", TweetSettings)
