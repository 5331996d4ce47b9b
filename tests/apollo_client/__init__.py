"""Apollo Client's persisted-queries link (Node, this folder's lock file) against the gateway."""
