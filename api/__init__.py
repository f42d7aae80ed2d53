"""HTTP API, pages and CLI. Routes parse, authorise, call one application method, map the result."""
