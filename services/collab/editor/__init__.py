"""collab-editor-N: editor servers, one bidi Edit stream per open document (seed 001 #06 "Collaborative Docs": WebSocket → gRPC)."""
