"""proximity-geofence: circular fences indexed by H3 cells, ENTER/EXIT events written durably exactly once, and the
resumable event feed (seed 001 #29 "Proximity Service": geofencing). The servicer is :mod:`.service`."""
