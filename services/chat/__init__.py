"""Real-time messaging (seed 000 "Chat System (like WhatsApp)", seed 003 "WhatsApp Messaging", seed 001 #01).

Services: chat-gateway-N (connection servers: one bidi ``Connect`` stream per
online device), chat-router (presence and routing), chat-messages (durable
conversations, per-conversation sequences, the offline queue and receipts).
"""
