"""Federation tests: our subgraph composed with a second one, served by real gateways."""
