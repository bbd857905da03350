"""The follow graph the social workload seeds: heavy-tailed follower counts, so that celebrities exist.

Generator: ``networkx.directed_configuration_model`` (Newman, Strogatz and
Watts 2001, "Random graphs with arbitrary degree distributions"), collapsed
to a simple directed graph (no parallel edges, no self-follows). An edge
``u → v`` means u follows v.

- Follower counts (in-degrees) follow a power law with exponent
  ``follower_exponent`` = 2.276, the exponent Kwak, Lee, Park and Moon
  measured for Twitter's follower distribution ("What is Twitter, a Social
  Network or a News Media?", WWW 2010), drawn with
  ``networkx.utils.powerlaw_sequence`` and scaled by ``follower_scale``
  (mean followers about 4.6 x scale), capped at users - 1.
- Following counts (out-degrees) are log-normal (sigma 1) activity weights,
  rescaled so that both sums match (the model needs equal sums).

Defaults (2,000 users, scale 4, seed 42) give about 30,700 edges: mean 15
followees, the top user about 990 followers, 33 users with 100 or more
followers (1.7%), 4 users following no one.
"""

from __future__ import annotations

import random

import networkx as nx


def follow_graph(users: int, *, follower_exponent: float, follower_scale: float, seed: int) -> nx.DiGraph:
    """A simple directed follow graph over nodes ``0 .. users-1`` (edge u → v: u follows v)."""
    rng = random.Random(seed)
    followers = [min(users - 1, int(follower_scale * x)) for x in nx.utils.powerlaw_sequence(users, follower_exponent, seed=rng)]
    total = sum(followers)
    activity = [rng.lognormvariate(0.0, 1.0) for _ in range(users)]
    scale = total / sum(activity)
    following = [int(a * scale) for a in activity]
    for i in rng.sample(range(users), total - sum(following)):
        following[i] += 1
    multi = nx.directed_configuration_model(followers, following, seed=rng.randrange(2**31))
    graph = nx.DiGraph()
    graph.add_nodes_from(range(users))
    # The model's edge (u, v) leaves an out-stub of u and enters an in-stub of v: u follows v.
    graph.add_edges_from((u, v) for u, v in multi.edges() if u != v)
    return graph
