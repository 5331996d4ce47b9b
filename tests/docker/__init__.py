"""The docker/ files (image, compose, Kubernetes), checked offline."""
