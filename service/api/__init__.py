"""The HTTP boundary: schemas, routes, middleware, and the mapping of errors to responses."""
