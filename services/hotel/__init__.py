"""Hotel reservation (seed 001 #20, Booking.com): room-night inventory with pessimistic or optimistic locking, and
bookings as a saga with payment authorise-then-capture."""
