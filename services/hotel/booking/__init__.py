"""``hotel-booking``: the hotel reservation case study's BookingService: bookings as a durable saga (hold the rooms,
authorise the payment, confirm the hold; compensate in reverse) with payment authorise-then-capture (seed 001 #20)."""
