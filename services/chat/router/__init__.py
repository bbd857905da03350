"""chat-router: presence (which gateway holds which device) and routing (seed 000 "Chat System", seed 003 "WhatsApp Messaging")."""
