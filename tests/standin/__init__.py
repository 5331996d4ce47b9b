"""The AI Bridge REST API stand-in, over HTTP and from its modules."""
