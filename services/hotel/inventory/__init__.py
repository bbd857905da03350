"""hotel-inventory: RoomInventoryService, each room type's rooms per night and the holds on them, never sold beyond
the sellable rooms, isolated by pessimistic locks or an optimistic version check (the A/B switch ``lock_mode``).

Seed 001 #20 (shared/seeds/001_58dfc580020147d2.txt line 23: "| 20 | Hotel Reservation | Pessimistic locking,
overbooking prevention, payment auth/capture | 1M bookings/day, Booking.com |"); see :mod:`.service`.
"""
