"""Geospatial building blocks shared by the case studies (seed 001 #29 "Proximity Service": Geohash/H3, radius search,
real-time location updates): :mod:`.index`, a sharded H3 cell index of moving entities; :mod:`.area`, a city's service
area (part of the contracts); :mod:`.validation`, the input rules of points, radii and resolutions."""
