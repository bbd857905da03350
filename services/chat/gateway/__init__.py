"""chat-gateway-N: connection servers, one bidi Connect stream per online device (seed 000 "Real-time Messaging")."""
